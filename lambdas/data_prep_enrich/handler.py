"""Data prep step 2: Comprehend PII redaction, language, entities, key phrases, classifier."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.runtime.data_prep import workflow
from lambdas.runtime.data_prep.aws import client

logger = Logger()
metrics = Metrics()
SETTINGS = workflow.Settings.from_env()


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = workflow.enrich(event, s3=client("s3"), comprehend=client("comprehend"), settings=SETTINGS)
    redacted = sum(result["entity_counts"].values())
    metrics.add_metric(name="PiiEntitiesRedacted", unit=MetricUnit.Count, value=redacted)
    # Counts by type only: the PII itself is never logged.
    logger.info("document enriched", extra={"key": event.get("document", {}).get("key"), "entity_counts": result["entity_counts"]})
    return result
