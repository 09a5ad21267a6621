"""EventBridge target: an approved model package's ARN goes to its use case's SSM parameter.

No Powertools Tracer: it costs ~0.8 s of cold start here, and the function's active X-Ray
tracing already records the invocation and its SSM call.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.runtime.fine_tuning import approval

logger = Logger()
metrics = Metrics()
PARAMETERS = approval.parameters_from_env(os.environ.get("APPROVAL_PARAMETERS"))


@cache
def ssm_client():
    # Created on first use, not at import: loading the SSM service model is most of the init cost.
    return boto3.client("ssm")



@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # A malformed or unexpected event raises: EventBridge retries, then parks it in the DLQ.
    result = approval.record(event, ssm_client(), PARAMETERS)
    metrics.add_metric(name="ApprovedPackagesRecorded" if result["recorded"] else "ApprovedPackagesSkipped", unit=MetricUnit.Count, value=1)
    logger.info("approval processed", extra=result)
    return result
