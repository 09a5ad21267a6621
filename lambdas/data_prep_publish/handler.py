"""Data prep step 4: write the curated document (or a dataset version for JSONL uploads)."""

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
    result = workflow.publish(event, s3=client("s3"), settings=SETTINGS)
    if "dataset" in result:
        name = "DatasetVersionsDeduplicated" if result.get("deduplicated") else "DatasetVersionsPublished"
    else:
        name = "DocumentsCurated"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    logger.info("published", extra=result)
    return result
