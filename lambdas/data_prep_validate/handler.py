"""Data prep step 0: classify an S3 upload (type, size, encryption) or fail into quarantine."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.runtime.data_prep import workflow
from lambdas.runtime.data_prep.aws import client

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    document = workflow.validate(event, client("s3"))
    logger.info("upload accepted", extra={"key": document["key"], "kind": document["kind"], "size": document["size"]})
    metrics.add_metric(name="DocumentsAccepted", unit=MetricUnit.Count, value=1)
    return document
