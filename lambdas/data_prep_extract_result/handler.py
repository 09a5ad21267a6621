"""Data prep step 1b: Textract's SNS completion message -> SendTaskSuccess/SendTaskFailure."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source

from lambdas.runtime.data_prep import workflow
from lambdas.runtime.data_prep.aws import client
from lambdas.runtime.data_prep.events import InvalidEvent

logger = Logger()
metrics = Metrics()
SETTINGS = workflow.Settings.from_env()


@logger.inject_lambda_context
@metrics.log_metrics
@event_source(data_class=SNSEvent)
def handler(event: SNSEvent, context: Any) -> list[dict[str, Any]]:
    results = []
    for record in event.records:
        try:
            message = json.loads(record.sns.message)
        except json.JSONDecodeError:
            raise InvalidEvent(f"SNS message {record.sns.message_id} is not a Textract completion (not JSON)") from None
        result = workflow.finish_extraction(
            message,
            textract=client("textract"),
            dynamodb=client("dynamodb"),
            sfn=client("stepfunctions"),
            s3=client("s3"),
            settings=SETTINGS,
        )
        logger.info("textract job finished", extra={"job_id": message.get("JobId"), "status": message.get("Status"), "outcome": result["outcome"]})
        metrics.add_metric(name="TextractJobsSucceeded" if result["outcome"] == "succeeded" else "TextractJobsFailed", unit=MetricUnit.Count, value=1)
        results.append(result)
    return results
