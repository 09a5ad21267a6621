"""EventBridge schedule (every experiment still running) or on demand ({"experiment": NAME}) -> verdicts in S3."""

from __future__ import annotations

import datetime as dt
import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from lambdas.runtime.experiments.scheduled import parse_experiments, run

logger = Logger()
NAMESPACE = "LLMOps/Experiments"


@cache
def s3():
    return boto3.client("s3")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # A failure raises: EventBridge retries, then parks the event in the DLQ (alarmed), and the errors alarm fires.
    experiments = parse_experiments(os.environ["EXPERIMENTS"])
    only = event.get("experiment") if isinstance(event, dict) else None
    results = run(s3(), bucket=os.environ["DATA_BUCKET"], experiments=experiments,
                  environment=os.environ.get("PLATFORM_ENVIRONMENT_NAME", ""),
                  lookback_days=int(os.environ.get("LOOKBACK_DAYS", "30")), now=dt.datetime.now(dt.timezone.utc), only=only)
    for result in results:
        logger.info("experiment verdict", extra=result)
        # One metric per experiment and status (EMF in the log: no PutMetricData permission needed).
        with single_metric(name="Verdict", unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
            metric.add_dimension(name="Experiment", value=result["experiment"])
            metric.add_dimension(name="Status", value=result["status"])
        for arm, n in result["samples"].items():
            with single_metric(name="Samples", unit=MetricUnit.Count, value=n, namespace=NAMESPACE) as metric:
                metric.add_dimension(name="Experiment", value=result["experiment"])
                metric.add_dimension(name="Arm", value=arm)
    return {"judged": results}
