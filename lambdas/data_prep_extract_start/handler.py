"""Data prep step 1a: start the Textract job; the state machine waits on the task token."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from lambdas.runtime.data_prep import workflow
from lambdas.runtime.data_prep.aws import client

logger = Logger()
SETTINGS = workflow.Settings.from_env()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = workflow.start_extraction(event, textract=client("textract"), dynamodb=client("dynamodb"), settings=SETTINGS)
    logger.info("textract job started", extra={"job_id": result["job_id"], "key": event.get("document", {}).get("key")})
    return result
