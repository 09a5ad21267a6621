"""Custom resource: the A2I human task UI and flow definition of ``HumanReview``."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger

from lambdas.runtime.human_review import flow

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = flow.handle(event, boto3.client("sagemaker"))
    logger.info("human review flow", extra={"request": event.get("RequestType"), "physical_id": result["PhysicalResourceId"]})
    return result
