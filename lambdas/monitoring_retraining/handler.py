"""EventBridge (drift alarm state change) -> the retraining decision (throttled, optionally approved, recorded)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.runtime.monitoring.retraining import Settings, decide, parse_alarm

logger = Logger()
metrics = Metrics()


@cache
def clients():
    return boto3.client("dynamodb"), boto3.client("sagemaker"), boto3.client("sns")


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # A malformed event raises: EventBridge retries, then parks it in the rule's DLQ (alarmed).
    settings = Settings.from_env(os.environ)
    alarm = parse_alarm(event, settings)
    if alarm is None:
        return {"status": "ignored"}
    dynamodb, sagemaker, sns = clients()
    result = decide(alarm, settings, dynamodb=dynamodb, sagemaker=sagemaker, sns=sns)
    metrics.add_metric(name=f"Retraining.{result['status']}", unit=MetricUnit.Count, value=1)
    logger.info("retraining decision", extra=result)
    return result
