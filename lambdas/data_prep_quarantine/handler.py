"""Data prep catch path: copy the input to quarantine/, write the reason, emit the event."""

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
    reason = workflow.quarantine(event, s3=client("s3"), events=client("events"), settings=SETTINGS)
    metrics.add_dimension(name="Error", value=reason["error"][:250])
    metrics.add_metric(name="DocumentsQuarantined", unit=MetricUnit.Count, value=1)
    logger.warning("document quarantined", extra={"key": reason["source"]["key"], "error": reason["error"], "reason": reason["reason"]})
    return reason
