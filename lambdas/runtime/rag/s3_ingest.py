"""S3 side of ingestion: EventBridge "Object Created"/"Object Deleted" events (delivered through SQS).

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


class _Bucket(BaseModel):
    name: str = Field(min_length=3)


class _Object(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    key: str = Field(min_length=1)
    size: int | None = None
    version_id: str | None = Field(default=None, alias="version-id")


class _Detail(BaseModel):
    bucket: _Bucket
    object: _Object


class S3ObjectEvent(BaseModel):
    """The parts of an EventBridge S3 event ingestion needs."""

    detail_type: str = Field(alias="detail-type", pattern=r"^Object (Created|Deleted)$")
    source: str = Field(pattern=r"^aws\.s3$")
    detail: _Detail


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
        if event.detail_type == "Object Deleted":
            return self.pipeline.delete(document_id)
        try:
            check_supported(obj.key)
            if obj.size is not None:
                check_size(obj.size, self.pipeline.max_document_bytes)
            data, version = self._read(bucket, obj.key, obj.version_id)
            return self.pipeline.ingest_bytes(document_id, obj.key, data, SourceRef(bucket, obj.key, version))
        except DocumentRejected as rejected:
            skipped = Skipped(rejected.reason, str(rejected), document_id)
            self._quarantine(bucket, obj.key, obj.version_id, skipped)
            return self._dead_letter(body, skipped)
        except self.s3.exceptions.NoSuchKey:
            # Deleted again before this message arrived; its Object Deleted event does the clean-up.
            return Skipped("gone", f"s3://{bucket}/{obj.key} no longer exists", document_id)

    def _read(self, bucket: str, key: str, version_id: str | None) -> tuple[bytes, str | None]:
        args = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
        try:
            response = self.s3.get_object(**args)
        except self.s3.exceptions.NoSuchKey:
            # S3 notifications URL-encode keys ("a b.txt" -> "a+b.txt"); accept such a key too.
            if unquote_plus(key) == key:
                raise
            response = self.s3.get_object(**{**args, "Key": unquote_plus(key)})
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
