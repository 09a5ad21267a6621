"""Start an A2I human loop for one routed interaction, idempotently."""

from __future__ import annotations

import json
from typing import Any

from lambdas.runtime.human_review.model import ReviewInput

MAX_INPUT_BYTES = 100_000  # StartHumanLoop InputContent limit


class ReviewInputTooLarge(ValueError):
    pass


def start_review(a2i: Any, flow_definition_arn: str, review: ReviewInput) -> str:
    """``started`` or ``exists`` (a redelivered message); the loop name derives from the interaction id."""
    content = json.dumps(review.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))
    if len(content.encode("utf-8")) > MAX_INPUT_BYTES:
        raise ReviewInputTooLarge(
            f"interaction {review.interaction_id}: review input is {len(content.encode('utf-8'))} bytes; A2I takes at most {MAX_INPUT_BYTES}"
        )
    try:
        a2i.start_human_loop(
            HumanLoopName=review.loop_name(),
            FlowDefinitionArn=flow_definition_arn,
            HumanLoopInput={"InputContent": content},
        )
    except Exception as exc:  # botocore ClientError, without importing botocore here
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code == "ConflictException":
            return "exists"
        raise
    return "started"
