"""S3 side of ingestion: EventBridge "Object Created"/"Object Deleted" events (delivered through SQS).

Events are handled by what they mean for the object's *current* version, which is what the
index holds (docs/rag.md, "Event semantics"):

- Object Created: indexed only if its version is still the current one (a later upload or a
  delete marker supersedes it; a version that no longer exists is skipped, not retried).
- Object Deleted, ``deletion-type`` "Permanently Deleted" of a version the index does not hold
  (lifecycle expiry of a noncurrent version): nothing changes.
- Any other delete (a delete marker, a permanent delete of the indexed version, or an event
  without ``deletion-type``): the index is reconciled with S3: no current version -> the
  document is removed; another current version -> that version is indexed.
- Events arrive out of order (SQS standard queue): the store refuses a write or delete older
  (by the event's ``sequencer``) than the one that wrote what it holds.
- Folder markers (keys ending in ``/``) are ignored.

A document that cannot be indexed is copied to the quarantine prefix with a ``<key>.reason.json``
and its message is sent to the dead-letter queue with the reason; the batch carries on.
Transient failures (throttling, database unreachable) raise, so SQS redelivers the message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.runtime.rag.ingest import IngestionPipeline, IngestOutcome
from lambdas.runtime.rag.loaders import DocumentRejected, SourceRef, check_size, check_supported

PERMANENTLY_DELETED = "Permanently Deleted"
DELETE_MARKER_CREATED = "Delete Marker Created"
# Error codes S3 answers when the object or the version asked for does not exist (HEAD has no body: "404").
_GONE = frozenset({"404", "NoSuchKey", "NoSuchVersion"})


class _Bucket(BaseModel):
    name: str = Field(min_length=3)


class _Object(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    key: str = Field(min_length=1)
    size: int | None = None
    version_id: str | None = Field(default=None, alias="version-id")
    sequencer: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{1,64}$")


class _Detail(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    bucket: _Bucket
    object: _Object
    deletion_type: str | None = Field(default=None, alias="deletion-type")
    reason: str | None = None


class S3ObjectEvent(BaseModel):
    """The parts of an EventBridge S3 event ingestion needs."""

    detail_type: str = Field(alias="detail-type", pattern=r"^Object (Created|Deleted)$")
    source: str = Field(pattern=r"^aws\.s3$")
    detail: _Detail


@dataclass(frozen=True)
class _Current:
    key: str  # as S3 knows it (URL-decoded if the event's form did not exist)
    version: str | None


def document_id_for(bucket: str, key: str) -> str:
    """One id per S3 object (not per version), so a new version replaces the old one's chunks."""
    return f"s3://{bucket}/{key}"


@dataclass(frozen=True)
class Skipped:
    """A message set aside: the document (or the message itself) cannot be indexed."""

    reason: str
    message: str
    document_id: str | None = None


class S3Ingestion:
    def __init__(
        self,
        pipeline: IngestionPipeline,
        *,
        s3: Any,
        sqs: Any,
        dlq_url: str,
        quarantine_prefix: str = "quarantine/",
    ) -> None:
        self.pipeline = pipeline
        self.s3 = s3
        self.sqs = sqs
        self.dlq_url = dlq_url
        self.quarantine_prefix = quarantine_prefix

    @classmethod
    def from_env(cls, pipeline: IngestionPipeline, environ: Mapping[str, str] = os.environ) -> S3Ingestion:
        import boto3

        return cls(pipeline, s3=boto3.client("s3"), sqs=boto3.client("sqs"), dlq_url=environ["DLQ_URL"],
                   quarantine_prefix=environ.get("QUARANTINE_PREFIX") or "quarantine/")

    def handle_message(self, body: str) -> IngestOutcome | Skipped:
        try:
            event = S3ObjectEvent.model_validate_json(body)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])
            return self._dead_letter(body, Skipped("invalid-event", f"not an S3 Object Created/Deleted event: {problems}"))
        bucket, obj = event.detail.bucket.name, event.detail.object
        document_id = document_id_for(bucket, obj.key)
        if obj.key.endswith("/"):
            return Skipped("folder-marker", f"{obj.key!r} is a folder marker, not a document", document_id)
        if event.detail_type == "Object Deleted":
            return self._deleted(body, bucket, obj, event.detail.deletion_type, document_id)
        try:
            check_supported(obj.key)
            if obj.size is not None:
                check_size(obj.size, self.pipeline.max_document_bytes)
        except DocumentRejected as rejected:
            return self._reject(body, bucket, obj.key, obj.version_id, Skipped(rejected.reason, str(rejected), document_id))
        current = self._current(bucket, obj.key)
        if current is None:
            return Skipped("gone", f"s3://{bucket}/{obj.key} no longer exists (deleted since this event)", document_id)
        if obj.version_id and current.version and current.version != obj.version_id:
            # A later upload, or a delete of this version, superseded it: that event does the indexing.
            return Skipped("superseded", f"version {obj.version_id} of s3://{bucket}/{obj.key} is no longer "
                                         f"current (current: {current.version})", document_id)
        return self._index(body, bucket, current, obj.sequencer, document_id)

    def _deleted(self, body: str, bucket: str, obj: _Object, deletion_type: str | None,
                 document_id: str) -> IngestOutcome | Skipped:
        # One state per index: several while an embedding A/B writes every arm's index.
        helds = self.pipeline.stored_all(document_id)
        held = helds[0]
        versioned_delete = deletion_type == PERMANENTLY_DELETED and obj.version_id not in (None, "null")
        if versioned_delete and all(h is None or h.version != obj.version_id for h in helds):
            # A version no index holds (e.g. lifecycle expiry of a noncurrent version).
            return IngestOutcome(document_id, "unchanged", len(held.chunk_ids) if held else 0)
        current = self._current(bucket, obj.key)
        if current is None:
            return self.pipeline.delete(document_id, sequencer=obj.sequencer)
        if all(h is not None and h.version is not None and h.version == current.version for h in helds):
            return IngestOutcome(document_id, "unchanged", len(held.chunk_ids))
        # The indexed version was deleted and an older one is current again, or a newer one is current.
        return self._index(body, bucket, current, obj.sequencer, document_id)

    def _index(self, body: str, bucket: str, current: _Current, sequencer: str | None,
               document_id: str) -> IngestOutcome | Skipped:
        try:
            check_supported(current.key)
            read = self._read(bucket, current.key, current.version)
            if read is None:
                return Skipped("gone", f"s3://{bucket}/{current.key} version {current.version} no longer exists", document_id)
            data, version = read
            source = SourceRef(bucket, current.key, version, sequencer)
            return self.pipeline.ingest_bytes(document_id, current.key, data, source)
        except DocumentRejected as rejected:
            return self._reject(body, bucket, current.key, current.version, Skipped(rejected.reason, str(rejected), document_id))

    def _reject(self, body: str, bucket: str, key: str, version_id: str | None, skipped: Skipped) -> Skipped:
        self._quarantine(bucket, key, version_id, skipped)
        return self._dead_letter(body, skipped)

    @staticmethod
    def _code(exc: Exception) -> str:
        return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))

    def _current(self, bucket: str, key: str) -> _Current | None:
        """The object's current version, or ``None`` when there is none (deleted, or a delete marker)."""
        for candidate in dict.fromkeys((key, unquote_plus(key))):
            # S3 notifications URL-encode keys ("a b.txt" -> "a+b.txt"); accept such a key too.
            try:
                head = self.s3.head_object(Bucket=bucket, Key=candidate)
            except self.s3.exceptions.ClientError as exc:
                if self._code(exc) in _GONE:
                    continue
                raise
            return _Current(candidate, head.get("VersionId"))
        return None

    def _read(self, bucket: str, key: str, version_id: str | None) -> tuple[bytes, str | None] | None:
        args = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
        try:
            response = self.s3.get_object(**args)
        except self.s3.exceptions.ClientError as exc:
            if self._code(exc) in _GONE:
                return None  # deleted between the HEAD and the GET
            raise
        # Check the size before reading the body: an oversized object is never pulled into memory.
        check_size(response["ContentLength"], self.pipeline.max_document_bytes)
        return response["Body"].read(), response.get("VersionId") or version_id

    def _quarantine(self, bucket: str, key: str, version_id: str | None, skipped: Skipped) -> None:
        target = f"{self.quarantine_prefix}{key}"
        source = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
        copied = True
        try:
            self.s3.copy_object(Bucket=bucket, Key=target, CopySource=source)
        except self.s3.exceptions.ClientError:
            copied = False  # e.g. over the 5 GB CopyObject limit; the reason file still records it
        reason = {
            "bucket": bucket,
            "key": key,
            "version_id": version_id,
            "copied_to": target if copied else None,
            "reason": skipped.reason,
            "message": skipped.message,
            "stage": "rag-ingest",
            "at": datetime.now(timezone.utc).isoformat(),
        }
        self.s3.put_object(Bucket=bucket, Key=f"{target}.reason.json", Body=json.dumps(reason).encode(),
                           ContentType="application/json")

    def _dead_letter(self, body: str, skipped: Skipped) -> Skipped:
        self.sqs.send_message(
            QueueUrl=self.dlq_url,
            MessageBody=body,
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": skipped.reason},
                "message": {"DataType": "String", "StringValue": skipped.message[:1000]},
            },
        )
        return skipped
