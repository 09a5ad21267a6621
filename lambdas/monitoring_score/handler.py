"""Monitoring scorer: data-capture objects (SQS ← EventBridge) and the interaction log (DynamoDB stream) → metrics.

Thin over ``lambdas.runtime.monitoring.batch``: per-record rows to the metrics table, aggregates and
drift to CloudWatch, malformed lines quarantined, routed answers to human review. Both event sources
are retried: a failed SQS message is reported alone (partial batch response); a failed stream batch
fails the invocation so Lambda bisects it; what keeps failing lands in the DLQ / on-failure
destination, alarmed.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from lambdas.runtime.monitoring import batch as b

logger = Logger()
BASELINE_TTL_S = 300  # a new baseline version is picked up within five minutes


@cache
def clients() -> tuple[Any, Any, Any]:
    return boto3.client("s3"), boto3.client("cloudwatch"), boto3.client("sqs")


@cache
def settings() -> b.Settings:
    return b.Settings.from_env(os.environ)


_baselines: dict[str, tuple[float, Any]] = {}


def baseline(use_case: str) -> Any:
    hit = _baselines.get(use_case)
    if hit and time.monotonic() - hit[0] < BASELINE_TTL_S:
        return hit[1]
    found = b.latest_baseline(clients()[0], settings().bucket, use_case)
    _baselines[use_case] = (time.monotonic(), found)
    return found


def _capture_object(message: dict[str, Any]) -> dict[str, Any]:
    """One SQS message: an EventBridge S3 "Object Created" event for a capture file."""
    event = json.loads(message["body"])
    detail = event.get("detail") or {}
    bucket = (detail.get("bucket") or {}).get("name")
    key = (detail.get("object") or {}).get("key")
    if bucket != settings().bucket or not key:
        # Not retried into success: raise so it ends in the DLQ with the message kept for a person.
        raise ValueError(f"message {message.get('messageId')}: not an Object Created event of the data bucket "
                         f"(bucket {bucket!r}, key {key!r})")
    s3, cloudwatch, sqs = clients()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    batch = b.capture_batch(key, body.iter_lines())
    outcome = b.process(batch, settings(), s3=s3, cloudwatch=cloudwatch, sqs=sqs, baselines=baseline, log=logger.warning)
    logger.info("capture scored", extra={"key": key, "rows": len(outcome.rows), "rejected": len(batch.rejected),
                                         "quarantine": outcome.quarantined, "objects": outcome.objects})
    return {"key": key, "rows": len(outcome.rows), "rejected": len(batch.rejected)}


def _sqs(event: dict[str, Any]) -> dict[str, Any]:
    failures = []
    for message in event["Records"]:
        try:
            _capture_object(message)
        except Exception:
            logger.exception("capture object failed", extra={"messageId": message.get("messageId")})
            failures.append({"itemIdentifier": message["messageId"]})
    return {"batchItemFailures": failures}


def _stream(event: dict[str, Any]) -> dict[str, Any]:
    from lambdas.runtime.rag.interactions import item_to_record

    records = event["Records"]
    s3, cloudwatch, sqs = clients()
    cfg = settings()
    try:
        items = b.sort_stream(records, item_to_record)
        if items.undecodable:
            bad = b.Batch(source="rag", name=b.stable_id(*(seq for seq, _, _ in items.undecodable)), parsed=[],
                          origin="interactions stream")
            b.quarantine(s3, cfg.bucket, bad, [(seq or item_id, reason, item_id) for seq, item_id, reason in items.undecodable])
            b.put_metric_data(cloudwatch, [b.count_datum("MalformedLines", len(items.undecodable), "rag", datetime.now(timezone.utc))])
        routed: list[str] = []
        if items.inserts:
            outcome = b.process(b.rag_batch(items.inserts), cfg, s3=s3, cloudwatch=cloudwatch, sqs=sqs,
                                baselines=baseline, log=logger.warning)
            routed += outcome.routed
        routed += b.route_feedback(items.feedback, cfg, sqs=sqs)
    except Exception:
        # The batch is scored as one unit: fail the invocation so Lambda bisects it (a partial response
        # naming the first record would only retry the same batch) until a lone poison record, after
        # its retries, goes to the on-failure destination.
        logger.exception("interaction batch failed", extra={"records": len(records)})
        raise
    logger.info("interactions scored", extra={"inserts": len(items.inserts), "feedback": len(items.feedback),
                                              "routed": len(routed), "skipped": items.skipped,
                                              "undecodable": len(items.undecodable)})
    return {"batchItemFailures": []}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:dynamodb":
        return _stream(event)
    if records and records[0].get("eventSource") == "aws:sqs":
        return _sqs(event)
    raise ValueError("event: neither an SQS batch nor a DynamoDB stream batch (Records[0].eventSource)")
