"""Shared builders for the data-prep tests: real PDFs, S3 EventBridge events, received events."""

from __future__ import annotations

import io
import json
from typing import Any

REGION = "us-east-1"
DATA = "llmops-dev-data"
ARTIFACTS = "llmops-dev-artifacts"


def make_pdf(pages: list[str] | int = 1, *, password: str | None = None) -> bytes:
    """A real PDF written by pypdf: blank pages, or pages with text via a minimal content stream."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    texts = [""] * pages if isinstance(pages, int) else pages
    for text in texts:
        page = writer.add_blank_page(width=612, height=792)
        if text:
            font = DictionaryObject(
                {
                    NameObject("/Type"): NameObject("/Font"),
                    NameObject("/Subtype"): NameObject("/Type1"),
                    NameObject("/BaseFont"): NameObject("/Helvetica"),
                }
            )
            page[NameObject("/Resources")] = DictionaryObject(
                {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
            )
            stream = DecodedStreamObject()
            lines = [f"({line}) Tj T*" for line in text.replace("(", "[").replace(")", "]").split("\n")]
            stream.set_data(("BT /F1 12 Tf 14 TL 72 720 Td " + " ".join(lines) + " ET").encode("latin-1"))
            page[NameObject("/Contents")] = writer._add_object(stream)
    if password:
        writer.encrypt(user_password=password, owner_password=password, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def received_events(aws: dict[str, Any]) -> list[dict[str, Any]]:
    msgs = aws["sqs"].receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in msgs]


def s3_event(key: str, version_id: str | None, bucket: str = DATA) -> dict[str, Any]:
    """An EventBridge "Object Created" event as S3 sends it (key URL-encoded)."""
    from urllib.parse import quote_plus

    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": 1, "etag": "e", "sequencer": "1"}
    if version_id:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-25T10:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": obj, "request-id": "r", "requester": "123456789012", "reason": "PutObject"},
    }
