"""The RAG interaction log: one DynamoDB item per answered query, in the monitoring record format.

The item keeps the monitoring interaction record (``{prompt, question, response, contexts, metadata}``)
as one JSON string under ``record``, so every reader (the batch scorer on the table's stream, the
feedback route, the experiments judge, human review) parses the same shape the local CLI writes, and
no float has to become a DynamoDB number. A TTL (``expires_at``) bounds how long questions are kept.
"""

from __future__ import annotations

import datetime as _dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

DEFAULT_RETENTION_DAYS = 30
# DynamoDB refuses items over 400 KB; passages are cut first so the question and answer always survive.
MAX_RECORD_BYTES = 350_000


class InteractionLogError(RuntimeError):
    """The log could not be written or read; the message names the table and the cause's kind."""


def new_interaction_id() -> str:
    return str(uuid.uuid4())


def _bounded(record: dict[str, Any]) -> str:
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode("utf-8")) <= MAX_RECORD_BYTES:
        return text
    contexts = list(record.get("contexts") or [])
    budget = max(0, MAX_RECORD_BYTES - len(json.dumps({**record, "contexts": []}, ensure_ascii=False).encode("utf-8")))
    per = max(0, budget // max(1, len(contexts)) - 16)
    cut = [c.encode("utf-8")[:per].decode("utf-8", "ignore") for c in contexts]
    metadata = {**(record.get("metadata") or {}), "truncated": True}
    text = json.dumps({**record, "contexts": cut, "metadata": metadata}, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode("utf-8")) > MAX_RECORD_BYTES:  # the question and answer alone are too large
        raise InteractionLogError(f"interaction record is {len(text.encode('utf-8'))} bytes even without passages")
    return text


def item_to_record(item: Mapping[str, Any]) -> dict[str, Any]:
    """A table item (resource form ``{"record": "..."}``) or a stream image (``{"record": {"S": "..."}}``) → record.

    Attributes set after the write (``feedback``) are merged into the record's metadata.
    """
    raw = item.get("record")
    if isinstance(raw, Mapping):
        raw = raw.get("S")
    if not isinstance(raw, str):
        raise InteractionLogError("item has no 'record' string attribute")
    record = json.loads(raw)
    feedback = _plain(item.get("feedback"))
    if feedback is not None:
        record.setdefault("metadata", {})["feedback"] = feedback
    return record


def _plain(value: Any) -> Any:
    """A low-level attribute value (``{"M": {...}}``, ``{"S": ...}``) → plain Python; plain values pass."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return value
    (kind, inner), = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        return float(inner) if any(c in inner for c in ".eE") else int(inner)
    if kind == "BOOL":
        return inner
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _plain(v) for k, v in inner.items()}
    if kind == "L":
        return [_plain(v) for v in inner]
    return value


class InteractionLog:
    """Writes and reads interaction items of one table (low-level client: no resource layer at cold start)."""

    def __init__(self, table_name: str, client: Any = None, *, retention_days: int = DEFAULT_RETENTION_DAYS) -> None:
        if not table_name:
            raise InteractionLogError("INTERACTIONS_TABLE is not set")
        if retention_days < 1:
            raise InteractionLogError(f"retention_days must be at least 1, got {retention_days}")
        self.table_name = table_name
        self.retention_days = retention_days
        if client is None:
            import boto3

            client = boto3.client("dynamodb")
        self.client = client

    @classmethod
    def from_env(cls, env: Mapping[str, str], client: Any = None) -> "InteractionLog | None":
        """The log the environment names, or None when the function has none (local runs, old stacks)."""
        table = env.get("INTERACTIONS_TABLE")
        if not table:
            return None
        return cls(table, client, retention_days=int(env.get("INTERACTION_RETENTION_DAYS") or DEFAULT_RETENTION_DAYS))

    def put(self, record: dict[str, Any], *, now: _dt.datetime | None = None) -> str:
        """Store one record; returns its interaction id (the record's ``metadata.id``, set when missing)."""
        now = now or _dt.datetime.now(_dt.timezone.utc)
        metadata = record.setdefault("metadata", {})
        interaction_id = str(metadata.get("id") or new_interaction_id())
        metadata["id"] = interaction_id
        item = {
            "interaction_id": {"S": interaction_id},
            "recorded_at": {"S": now.isoformat(timespec="seconds")},
            "expires_at": {"N": str(int(now.timestamp()) + self.retention_days * 86400)},
            "record": {"S": _bounded(record)},
        }
        if metadata.get("prompt_id"):
            item["prompt_id"] = {"S": str(metadata["prompt_id"])}
        if metadata.get("prompt_version") is not None:
            item["prompt_version"] = {"N": str(int(metadata["prompt_version"]))}
        # Ids are fresh uuids: a collision would be a bug, so refuse instead of overwriting a record.
        self.client.put_item(TableName=self.table_name, Item=item,
                             ConditionExpression="attribute_not_exists(interaction_id)")
        return interaction_id

    def get(self, interaction_id: str) -> dict[str, Any] | None:
        found = self.client.get_item(TableName=self.table_name, Key={"interaction_id": {"S": interaction_id}},
                                     ConsistentRead=True).get("Item")
        return item_to_record(found) if found else None
