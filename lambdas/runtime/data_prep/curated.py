"""The curated document (schema ``llmops.curated-document/v1``) that RAG ingestion reads.

Written by the data-prep workflow to ``curated/<document_id>.curated.json`` in the data bucket
and by ``llmops local prep`` to ``<out>/<document_id>.curated.json``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from lambdas.runtime.data_prep.enrich import EnrichedDocument

SCHEMA = "llmops.curated-document/v1"
PREFIX = "curated/"
SUFFIX = ".curated.json"
EXTRACTORS = ("textract", "pypdf", "text")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def curated_key(document_id: str) -> str:
    if not _ID.fullmatch(document_id):
        raise ValueError(f"document_id {document_id!r} must be 1-200 of A-Z a-z 0-9 . _ -")
    return f"{PREFIX}{document_id}{SUFFIX}"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_curated(
    *,
    document_id: str,
    source: dict[str, Any],
    enriched: EnrichedDocument,
    extractor: str,
    textract_job_id: str | None = None,
    custom_step: str | None = None,
    prepared_at: str | None = None,
) -> dict[str, Any]:
    doc = {
        "schema": SCHEMA,
        "document_id": document_id,
        "source": {"bucket": source["bucket"], "key": source["key"], "version_id": source.get("version_id")},
        "pages": [{"page": p.page, "text": p.text} for p in enriched.pages],
        "metadata": {
            "language": enriched.language,
            "entities": enriched.entities,
            "key_phrases": enriched.key_phrases,
            "classification": enriched.classification,
        },
        "lineage": {
            "textract_job_id": textract_job_id,
            "extractor": extractor,
            "redaction": {"entity_counts": dict(sorted(enriched.entity_counts.items())), "mask": enriched.mask},
            "custom_step": custom_step,
            "prepared_at": prepared_at or now_iso(),
        },
    }
    validate_curated(doc)
    return doc


def validate_curated(doc: Any) -> dict[str, Any]:
    """Check a curated document against the v1 contract; ``ValueError`` names the bad field."""

    def need(cond: bool, where: str, what: str) -> None:
        if not cond:
            raise ValueError(f"curated document: {where} {what}")

    need(isinstance(doc, dict), "top level", "must be a JSON object")
    need(doc.get("schema") == SCHEMA, "schema", f"must be {SCHEMA!r}, got {doc.get('schema')!r}")
    need(isinstance(doc.get("document_id"), str) and bool(_ID.fullmatch(doc["document_id"])), "document_id", "must be an id string")
    src = doc.get("source")
    need(isinstance(src, dict), "source", "must be an object")
    # bucket is null only for documents prepared locally (`llmops local prep`): key is then a file path.
    need((src.get("bucket") is None or isinstance(src.get("bucket"), str)) and isinstance(src.get("key"), str),
         "source", "needs a key string and a bucket string (or null for a local file)")
    need(src.get("version_id") is None or isinstance(src.get("version_id"), str), "source.version_id", "must be a string or null")
    pages = doc.get("pages")
    need(isinstance(pages, list), "pages", "must be a list")
    for i, page in enumerate(pages):
        need(isinstance(page, dict) and isinstance(page.get("page"), int) and page["page"] >= 1, f"pages[{i}].page", "must be an int >= 1")
        need(isinstance(page.get("text"), str), f"pages[{i}].text", "must be a string")
    meta = doc.get("metadata")
    need(isinstance(meta, dict), "metadata", "must be an object")
    need(meta.get("language") is None or isinstance(meta["language"], str), "metadata.language", "must be a string or null")
    for i, e in enumerate(meta.get("entities", None) or []):
        need(
            isinstance(e, dict) and isinstance(e.get("type"), str) and isinstance(e.get("text"), str) and isinstance(e.get("score"), (int, float)),
            f"metadata.entities[{i}]",
            "needs type, text and score",
        )
    need(isinstance(meta.get("entities"), list), "metadata.entities", "must be a list")
    need(isinstance(meta.get("key_phrases"), list) and all(isinstance(k, str) for k in meta["key_phrases"]), "metadata.key_phrases", "must be a list of strings")
    need("classification" in meta, "metadata.classification", "must be present (null when none)")
    lin = doc.get("lineage")
    need(isinstance(lin, dict), "lineage", "must be an object")
    need(lin.get("extractor") in EXTRACTORS, "lineage.extractor", f"must be one of {EXTRACTORS}, got {lin.get('extractor')!r}")
    red = lin.get("redaction")
    need(isinstance(red, dict) and isinstance(red.get("entity_counts"), dict) and isinstance(red.get("mask"), str), "lineage.redaction", "needs entity_counts and mask")
    need(lin.get("textract_job_id") is None or isinstance(lin["textract_job_id"], str), "lineage.textract_job_id", "must be a string or null")
    need(lin.get("custom_step") is None or isinstance(lin["custom_step"], str), "lineage.custom_step", "must be a string or null")
    need(isinstance(lin.get("prepared_at"), str), "lineage.prepared_at", "must be an ISO 8601 string")
    return doc


def write_curated(s3: Any, bucket: str, doc: dict[str, Any]) -> str:
    validate_curated(doc)
    key = curated_key(doc["document_id"])
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(doc, ensure_ascii=False).encode("utf-8"),
        ContentType="application/json; charset=utf-8",
    )
    return key
