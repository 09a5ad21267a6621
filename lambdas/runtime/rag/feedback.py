"""``POST /feedback``: a caller's thumbs up/down (and comment) on an answered query, stored with its interaction.

The body is checked twice: by the API's request model (``llmops/stacks/rag.py``, the same limits as
below) and here, so a direct invoke or a model drift cannot store anything else. The write is one
``UpdateItem`` that sets only the ``feedback`` attribute of an existing interaction item (IAM limits the
function's UpdateItem to that attribute); an unknown id fails its ``attribute_exists`` condition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

RATINGS = ("up", "down")
MAX_COMMENT_CHARS = 2000
MAX_ID_CHARS = 200
# The ids the interaction log writes (uuid4) and the ids a human review loop takes (ReviewInput).
ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
FEEDBACK_FIELDS = frozenset({"interaction_id", "rating", "comment"})
FEEDBACK_ATTRIBUTE = "feedback"  # the one attribute the query function may update (IAM: dynamodb:Attributes)
KEY_ATTRIBUTE = "interaction_id"
_ID = re.compile(ID_PATTERN)


class InvalidFeedback(ValueError):
    """The request is malformed; the message names the field and the problem (HTTP 400)."""


class UnknownInteraction(LookupError):
    """No interaction with this id is logged (never answered, or expired after its retention) (HTTP 404)."""

    def __init__(self, interaction_id: str) -> None:
        super().__init__(f"no interaction {interaction_id!r}: it was never logged or has expired")
        self.interaction_id = interaction_id


@dataclass(frozen=True)
class Feedback:
    interaction_id: str
    rating: str  # "up" | "down"
    comment: str = ""

    def attribute(self, at: datetime) -> dict[str, str]:
        return {"rating": self.rating, "comment": self.comment,
                "at": at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")}


def parse_feedback(payload: Any) -> Feedback:
    """The feedback in a decoded JSON body, or ``InvalidFeedback`` naming what is wrong."""
    if not isinstance(payload, Mapping):
        raise InvalidFeedback('the body must be a JSON object like {"interaction_id": "...", "rating": "up"}')
    unknown = sorted(str(name) for name in payload if name not in FEEDBACK_FIELDS)
    if unknown:
        raise InvalidFeedback(f"unknown request field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(FEEDBACK_FIELDS))}")
    interaction_id = payload.get("interaction_id")
    if not isinstance(interaction_id, str) or not interaction_id:
        raise InvalidFeedback("interaction_id is required and must be a non-empty string (the id /query answered with)")
    if len(interaction_id) > MAX_ID_CHARS or not _ID.fullmatch(interaction_id):
        raise InvalidFeedback(f"interaction_id must be 1-{MAX_ID_CHARS} characters of A-Z a-z 0-9 . _ : -")
    rating = payload.get("rating")
    if rating not in RATINGS or not isinstance(rating, str):
        raise InvalidFeedback(f"rating must be one of {', '.join(RATINGS)}, got {rating!r}")
    comment = payload.get("comment", "")
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise InvalidFeedback(f"comment must be a string, got {type(comment).__name__}")
    if len(comment) > MAX_COMMENT_CHARS:
        raise InvalidFeedback(f"comment is {len(comment)} characters; the limit is {MAX_COMMENT_CHARS}")
    try:
        comment.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidFeedback(f"comment is not valid Unicode: a lone surrogate at character {exc.start}") from None
    if "\x00" in comment:
        raise InvalidFeedback("comment must not contain NUL characters")
    return Feedback(interaction_id=interaction_id, rating=rating, comment=comment.strip())


def record_feedback(client: Any, table_name: str, feedback: Feedback, *, now: datetime | None = None) -> dict[str, str]:
    """Store the feedback on its interaction item (the latest feedback replaces an earlier one).

    One low-level ``UpdateItem``: it names only ``interaction_id`` (key) and ``feedback`` and asks for no
    return values, which is what the function's IAM conditions allow. Raises ``UnknownInteraction``.
    """
    value = feedback.attribute(now or datetime.now(timezone.utc))
    try:
        client.update_item(
            TableName=table_name,
            Key={KEY_ATTRIBUTE: {"S": feedback.interaction_id}},
            UpdateExpression="SET #feedback = :feedback",
            ConditionExpression="attribute_exists(#id)",
            ExpressionAttributeNames={"#feedback": FEEDBACK_ATTRIBUTE, "#id": KEY_ATTRIBUTE},
            ExpressionAttributeValues={":feedback": {"M": {k: {"S": v} for k, v in value.items()}}},
            ReturnValues="NONE",
        )
    except Exception as exc:  # botocore ClientError, without importing botocore here
        if getattr(exc, "response", {}).get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise UnknownInteraction(feedback.interaction_id) from None
        raise
    return value
