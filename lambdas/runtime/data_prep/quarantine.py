"""Quarantine: a failed input is copied (or referenced) under ``quarantine/`` with its reason.

The raw object is only ever read: nothing under ``raw/`` is deleted or changed. An EventBridge
event (source ``llmops.dataprep``, detail-type ``Document Quarantined``) lets the platform team
route alerts or tickets.
"""

from __future__ import annotations

import json
from typing import Any

from lambdas.runtime.data_prep.curated import now_iso

PREFIX = "quarantine/"
EVENT_SOURCE = "llmops.dataprep"
EVENT_DETAIL_TYPE = "Document Quarantined"
# CopyObject copies up to 5 GB in one request; larger objects are referenced, not copied.
MAX_COPY_BYTES = 5 * 1024**3


def quarantine_key(key: str) -> str:
    return PREFIX + key


def reason_key(key: str) -> str:
    return quarantine_key(key) + ".reason.json"


def _error_fields(error: Any) -> tuple[str, str]:
    """(name, message) from a Step Functions catch output ``{"Error", "Cause"}``.

    Anything else is accepted too: a string is the message, other values are shown as JSON.
    """
    if error is None:
        error = {}
    if isinstance(error, str):
        error = {"Cause": error}
    if not isinstance(error, dict):
        error = {"Cause": json.dumps(error, default=str)[:4000]}
    name = str(error.get("Error") or "Unknown")
    cause = error.get("Cause") or ""
    message = cause
    if isinstance(cause, str) and cause.startswith("{"):
        # A Lambda error's Cause is JSON: {"errorMessage", "errorType", "stackTrace"}.
        try:
            parsed = json.loads(cause)
            if isinstance(parsed, dict):
                message = parsed.get("errorMessage") or cause
                name = str(parsed.get("errorType") or name)
        except json.JSONDecodeError:
            pass
    return name, str(message)[:4000]


def quarantine_document(
    s3: Any,
    events: Any,
    *,
    bucket: str,
    key: str,
    version_id: str | None,
    error: Any,
    execution_id: str | None = None,
    event_bus_name: str = "default",
    stage: str | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Copy the object to ``quarantine/<key>``, write ``<key>.reason.json``, emit the event."""
    name, message = _error_fields(error)
    if notes:
        message = f"{message} ({'; '.join(notes)})" if message else "; ".join(notes)
    copied = False
    size = None
    try:
        head = s3.head_object(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}))
        size = head["ContentLength"]
        if size <= MAX_COPY_BYTES:
            source: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if version_id:
                source["VersionId"] = version_id
            s3.copy_object(Bucket=bucket, Key=quarantine_key(key), CopySource=source)
            copied = True
    except Exception as exc:  # the object may be gone or unreadable; the reason file must still be written
        code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NoSuchVersion", "NotFound"):
            message = f"{message} (source object not found when quarantining)"
        else:
            message = f"{message} (source object not copied: {code or type(exc).__name__})"
    reason = {
        "schema": "llmops.quarantine-reason/v1",
        "error": name,
        "reason": message,
        "stage": stage,
        "source": {"bucket": bucket, "key": key, "version_id": version_id, "size": size},
        "copied": copied,
        "quarantine_key": quarantine_key(key) if copied else None,
        "execution_id": execution_id,
        "quarantined_at": now_iso(),
    }
    s3.put_object(
        Bucket=bucket,
        Key=reason_key(key),
        Body=json.dumps(reason, indent=2, ensure_ascii=False).encode("utf-8"),
        ContentType="application/json",
    )
    response = events.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": EVENT_DETAIL_TYPE,
                "Detail": json.dumps({**reason, "reason_key": reason_key(key)}),
                "EventBusName": event_bus_name,
                "Resources": [],
            }
        ]
    )
    if response.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge rejected the quarantine event: {response.get('Entries')}")
    return {**reason, "reason_key": reason_key(key)}
