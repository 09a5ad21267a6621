"""Sync-at-deploy: the CloudFormation custom resource (CDK Provider on_event) that loads the
``prompts/*.yaml`` bundled with this function into the catalog table.

Create and Update sync (a new version only where a file changed; aliases moved through the API
are left alone and reported; idempotent; rules in ``lambdas/runtime/prompt_catalog/sync.py``); Delete does
nothing, because versions outlive the stack that wrote them. An invalid prompt file fails the
deployment with one line per problem, naming the file and field, before anything is written.
The ``PromptsHash`` property changes with the files, so CloudFormation calls Update exactly
when a prompt file changed. ``ReleasePins`` (the release manifest's prompt pins, staging/prod) and
``Experiments`` (prompt A/B weights) change the sync as described there; a pin whose hash the
catalog or the files do not hold fails the deploy with prompt, version and both hashes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.runtime.prompt_catalog.store import PromptCatalogStore
from lambdas.runtime.prompt_catalog.sync import sync_directory

logger = Logger()
metrics = Metrics()

# The bundle puts the repo's prompts/ folder beside lambdas/ (PlatformFunction extra_files).
DEFAULT_PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"


def build_store() -> PromptCatalogStore:
    return PromptCatalogStore.from_env()


def on_event(event: dict[str, Any], store: PromptCatalogStore, prompts_dir: Path) -> dict[str, Any]:
    request_type = event.get("RequestType")
    physical_id = event.get("PhysicalResourceId") or f"prompt-sync-{store.table_name}"
    if request_type == "Delete":
        return {"PhysicalResourceId": physical_id}
    if request_type not in ("Create", "Update"):
        raise ValueError(f"RequestType: expected Create, Update or Delete, got {request_type!r}")
    props = event.get("ResourceProperties") or {}
    # JSON strings: CloudFormation hands custom resources every number as a string.
    pins = json.loads(props.get("ReleasePins") or "{}")
    experiments = json.loads(props.get("Experiments") or "[]")
    report = sync_directory(store, prompts_dir, author=f"prompt-sync ({event.get('StackId', 'local')})",
                            pins=pins, experiments=experiments)
    metrics.add_metric(name="PromptVersionCreated", unit=MetricUnit.Count, value=len(report.created))
    metrics.add_metric(name="PromptAliasKept", unit=MetricUnit.Count, value=len(report.aliases_kept))
    logger.info("prompts synced", extra={"sync": report.as_dict()})
    if report.aliases_kept:
        # Not a failure: an A/B split or rollback made through the API outlives the deploy.
        logger.warning("aliases moved through the API were left alone", extra={"aliases_kept": report.aliases_kept})
    return {
        "PhysicalResourceId": physical_id,
        "Data": {"Created": len(report.created), "Unchanged": len(report.unchanged), "AliasesMoved": len(report.aliases_moved),
                 "AliasesKept": len(report.aliases_kept)},
    }


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    prompts_dir = Path(os.environ.get("PROMPTS_DIR") or DEFAULT_PROMPTS_DIR)
    return on_event(event, build_store(), prompts_dir)
