"""Event shapes as AWS delivers them: EventBridge S3 events inside SQS records, API Gateway proxy events."""

from __future__ import annotations

import json
import uuid
from functools import partial

from tests.lambdas.context import LambdaContext as LambdaContextBase

LambdaContext = partial(LambdaContextBase, function_name="rag-function", remaining_ms=60_000)



def s3_event(detail_type: str, bucket: str, key: str, *, version_id: str | None = None, size: int | None = None,
             sequencer: str = "00617F08299329D189", deletion_type: str = "Delete Marker Created",
             reason: str | None = None) -> dict:
    """An EventBridge S3 event; Object Deleted events carry ``deletion-type`` as S3 sends it."""
    obj: dict = {"key": key, "etag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": sequencer}
    if version_id:
        obj["version-id"] = version_id
    if size is not None:
        obj["size"] = size
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-25T12:00:00Z",
        "region": "eu-west-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": reason or ("PutObject" if detail_type == "Object Created" else "DeleteObject"),
            **({"deletion-type": deletion_type} if detail_type == "Object Deleted" else {}),
        },
    }


def sqs_event(*bodies: str) -> dict:
    return {
        "Records": [
            {
                "messageId": f"msg-{i}",
                "receiptHandle": f"handle-{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764072000000",
                               "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1764072000001"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:rag-ingest",
                "awsRegion": "eu-west-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def api_event(body: object, *, raw: str | None = None, path: str = "/query", method: str = "POST") -> dict:
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "accountId": "123456789012",
            "identity": {"userArn": "arn:aws:iam::123456789012:user/analyst", "sourceIp": "10.0.0.1"},
        },
        "body": raw if raw is not None else json.dumps(body),
        "isBase64Encoded": False,
    }
