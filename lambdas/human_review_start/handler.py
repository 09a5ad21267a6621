"""SQS -> StartHumanLoop, one routed interaction per message; redelivery starts no second loop."""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from lambdas.runtime.human_review.loops import start_review
from lambdas.runtime.human_review.model import ReviewInput

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def a2i():
    return boto3.client("sagemaker-a2i-runtime")


def record_handler(record: Any) -> str:
    # A malformed message raises: after maxReceiveCount it lands in the queue's DLQ, alarmed.
    review = ReviewInput.model_validate(json.loads(record.body))
    if os.environ.get("REVIEW_INSTRUCTIONS") and not review.instructions:
        review = review.model_copy(update={"instructions": os.environ["REVIEW_INSTRUCTIONS"]})
    outcome = start_review(a2i(), os.environ["FLOW_DEFINITION_ARN"], review)
    metrics.add_metric(name="HumanLoopsStarted" if outcome == "started" else "HumanLoopsAlreadyStarted",
                       unit=MetricUnit.Count, value=1)
    return outcome


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
