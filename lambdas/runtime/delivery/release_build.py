"""Read what the source environment serves into a release manifest (a plain dict).

The one place that needs AWS credentials of the source account: the newest approved model
package per use case (``SortOrder="Descending"``: the API's default order is ascending, so the
first item would be the oldest), and the catalog version each prompt alias points at. The
manifest is validated by ``llmops.delivery.release`` (``llmops release build`` does both).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from lambdas.runtime.prompt_catalog.errors import PromptCatalogError
from lambdas.runtime.prompt_catalog.store import PromptCatalogStore


class ReleaseBuildError(RuntimeError):
    """The source account cannot give what the release needs; the message names it."""


def _report_metrics(s3: Any, described: dict[str, Any]) -> dict[str, float]:
    """The evaluate step's ``evaluation.json`` metrics, registered as the package's model statistics."""
    uri = (((described.get("ModelMetrics") or {}).get("ModelStatistics") or {}).get("S3Uri")
           or ((described.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics", {}).get("S3Uri"))
    if not uri or s3 is None:
        return {}
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    import json

    try:
        report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ValueError, KeyError) as exc:
        raise ReleaseBuildError(f"{uri}: the package's evaluation report is not readable JSON ({exc})") from None
    metrics = report.get("metrics", {}) if isinstance(report, dict) else {}
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def latest_approved_package(sagemaker: Any, group: str, s3: Any = None) -> dict[str, Any]:
    response = sagemaker.list_model_packages(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved",
        SortBy="CreationTime", SortOrder="Descending", MaxResults=1,
    )
    packages = response.get("ModelPackageSummaryList", [])
    if not packages:
        raise ReleaseBuildError(
            f"model package group {group}: no Approved package; approve one "
            "(aws sagemaker update-model-package --model-approval-status Approved ...) before building a release"
        )
    arn = packages[0]["ModelPackageArn"]
    described = sagemaker.describe_model_package(ModelPackageName=arn)
    metrics = _report_metrics(s3, described)
    return {
        "model_package_arn": arn,
        "version": int(described.get("ModelPackageVersion") or arn.rsplit("/", 1)[-1]),
        "approval_status": described.get("ModelApprovalStatus", "Approved"),
        "metrics": metrics,
    }


def prompt_pins(store: PromptCatalogStore, aliases: dict[str, list[str]]) -> tuple[dict[str, Any], list[str]]:
    """``{prompt: {alias: {version, content_hash}}}`` and warnings (a split alias pins its main version)."""
    pins: dict[str, Any] = {}
    warnings: list[str] = []
    for prompt_id, names in sorted(aliases.items()):
        for alias_name in names:
            try:
                alias = store.get_alias(prompt_id, alias_name)
            except PromptCatalogError as exc:
                raise ReleaseBuildError(f"prompt {prompt_id} alias {alias_name}: {exc}") from None
            main = max(alias.targets, key=lambda t: (t.weight, t.version))
            if len(alias.targets) > 1:
                warnings.append(
                    f"prompt {prompt_id} alias {alias_name} splits traffic "
                    f"{'/'.join(f'v{t.version}:{t.weight}' for t in alias.targets)}; the release pins v{main.version}"
                )
            version = store.get_version(prompt_id, main.version)
            pins.setdefault(prompt_id, {})[alias_name] = {"version": version.version, "content_hash": version.content_hash}
    return pins, warnings


def build_release(
    *,
    name: str,
    source_environment: str,
    sagemaker: Any,
    s3: Any = None,
    prompt_store: PromptCatalogStore | None,
    package_groups: dict[str, str],
    prompt_aliases: dict[str, list[str]],
    embedding: dict[str, Any] | None = None,
    images: dict[str, str] | None = None,
    now: _dt.datetime | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The manifest dict and warnings. ``package_groups``: use case -> model package group name."""
    models = {use_case: latest_approved_package(sagemaker, group, s3) for use_case, group in sorted(package_groups.items())}
    prompts, warnings = prompt_pins(prompt_store, prompt_aliases) if prompt_store is not None else ({}, [])
    created = (now or _dt.datetime.now(_dt.timezone.utc)).replace(microsecond=0).isoformat()
    manifest = {
        "schema_version": 1,
        "name": name,
        "source_environment": source_environment,
        "created": created,
        "models": models,
        "prompts": prompts,
        "images": dict(images or {}),
    }
    if embedding:
        manifest["embedding"] = embedding
    return manifest, warnings
