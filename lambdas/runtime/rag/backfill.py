"""Backfill: queue an "Object Created" event for every current document, so ingestion fills a new index.

A new embedding A/B arm starts with an empty index; documents reach it when they are next written.
``queue_backfill`` sends the ingestion queue one EventBridge-shaped S3 event per current object
version under the ingested prefixes (no new S3 versions, so no other index re-embeds anything:
the indexes that hold the version skip it as unchanged). The events carry no sequencer, so a real
event for the same key, earlier or later, is never refused because of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

INGEST_PREFIXES = ("uploads/", "curated/")
SQS_BATCH = 10  # SendMessageBatch's limit


def current_objects(s3: Any, bucket: str, prefixes: Sequence[str] = INGEST_PREFIXES) -> Iterator[dict[str, Any]]:
    """``{key, version_id, size}`` of each current object version (no delete markers, no folder markers)."""
    paginator = s3.get_paginator("list_object_versions")
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                if version.get("IsLatest") and not version["Key"].endswith("/"):
                    vid = version.get("VersionId")
                    yield {"key": version["Key"], "version_id": None if vid in (None, "null") else vid,
                           "size": version.get("Size")}


def backfill_event(bucket: str, obj: dict[str, Any]) -> str:
    """The EventBridge S3 event ``S3Ingestion`` reads (lambdas/runtime/rag/s3_ingest.py)."""
    detail_object: dict[str, Any] = {"key": obj["key"]}
    if obj.get("size") is not None:
        detail_object["size"] = obj["size"]
    if obj.get("version_id"):
        detail_object["version-id"] = obj["version_id"]
    return json.dumps({"version": "0", "source": "aws.s3", "detail-type": "Object Created",
                       "detail": {"bucket": {"name": bucket}, "object": detail_object, "reason": "llmops backfill"}})


def queue_backfill(s3: Any, sqs: Any, *, bucket: str, queue_url: str,
                   prefixes: Sequence[str] = INGEST_PREFIXES) -> int:
    """Send one event per current document to ``queue_url``; returns how many. Raises naming any refused message."""
    sent, batch = 0, []

    def flush() -> None:
        nonlocal sent
        if not batch:
            return
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": body}
                                                                      for i, body in enumerate(batch)])
        failed = response.get("Failed") or []
        if failed:
            first = failed[0]
            raise RuntimeError(f"{len(failed)} backfill message(s) refused by {queue_url}: "
                               f"{first.get('Code')}: {first.get('Message')}")
        sent += len(batch)
        batch.clear()

    for obj in current_objects(s3, bucket, prefixes):
        batch.append(backfill_event(bucket, obj))
        if len(batch) == SQS_BATCH:
            flush()
    flush()
    return sent
