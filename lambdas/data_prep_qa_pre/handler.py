"""Ground Truth pre-annotation Lambda of the custom question-answer task."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from lambdas.runtime.data_prep.ground_truth import pre_annotation

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return pre_annotation(event)
