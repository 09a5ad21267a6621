"""Data prep step 3: the documented extension point for the platform team's own cleaning.

Contract: input ``{"document": {...}, "enriched_key": str}`` (JSON work file in the artifacts
bucket with ``pages``); output ``{"enriched_key": str, "custom_step": str | None}``. Replace this
function (``DataPrepWorkflow(custom_step=...)``) with one that keeps the contract; raise an
error to reject a document (it is quarantined with the error name and message as reason).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from lambdas.runtime.data_prep import workflow
from lambdas.runtime.data_prep.aws import client

logger = Logger()
SETTINGS = workflow.Settings.from_env()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return workflow.custom_step(event, s3=client("s3"), settings=SETTINGS)
