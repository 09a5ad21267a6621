"""Fine-tuning dataset versions (schema ``llmops.dataset-manifest/v1``).

``datasets/<dataset>/v<N>/data.jsonl`` plus ``manifest.json``. Versions are immutable: each
publish takes the next N with a conditional write (``If-None-Match: *``), so two writers
racing for the same N cannot overwrite each other; the loser moves on to N+1.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lambdas.runtime.data_prep.curated import now_iso
from lambdas.runtime.data_prep.errors import InvalidRecords

SCHEMA = "llmops.dataset-manifest/v1"
PREFIX = "datasets/"
FORMATS = ("instruction", "text-label")
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_FIELDS = {"instruction": ({"instruction", "response"}, {"input"}), "text-label": ({"text", "label"}, set())}


def validate_record(record: Any, fmt: str) -> dict[str, Any]:
    """A record of ``fmt`` or ``ValueError`` naming the problem."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {FORMATS}")
    if not isinstance(record, dict):
        raise ValueError("record must be a JSON object")
    required, optional = _FIELDS[fmt]
    missing = sorted(required - set(record))
    if missing:
        raise ValueError(f"missing field(s) {missing} for format {fmt!r}")
    extra = sorted(set(record) - required - optional)
    if extra:
        raise ValueError(f"unknown field(s) {extra} for format {fmt!r}")
    for name, value in record.items():
        if not isinstance(value, str):
            raise ValueError(f"field {name!r} must be a string")
        if name in required and not value.strip():
            raise ValueError(f"field {name!r} is empty")
    return record


def detect_format(record: dict[str, Any]) -> str:
    if "instruction" in record:
        return "instruction"
    if "text" in record and "label" in record:
        return "text-label"
    raise ValueError("record is neither instruction ({instruction, input?, response}) nor text-label ({text, label})")


def parse_records(lines: Iterable[str], source: str, max_errors: int = 10) -> tuple[str, list[dict[str, Any]]]:
    """Parse JSONL records of one format; raise ``InvalidRecords`` listing the bad lines."""
    records: list[dict[str, Any]] = []
    errors: list[str] = []
    fmt: str | None = None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("record must be a JSON object")
            fmt = fmt or detect_format(record)
            records.append(validate_record(record, fmt))
        except (ValueError, json.JSONDecodeError) as exc:
            errors.append(f"line {n}: {exc}")
    if errors:
        shown = "; ".join(errors[:max_errors])
        more = f" (and {len(errors) - max_errors} more)" if len(errors) > max_errors else ""
        raise InvalidRecords(f"{source}: {len(errors)} invalid record(s): {shown}{more}")
    if not records or fmt is None:
        raise InvalidRecords(f"{source}: no records")
    return fmt, records


def encode_jsonl(records: Sequence[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records).encode("utf-8")


@dataclass(frozen=True)
class DatasetVersion:
    dataset: str
    version: int
    data_key: str
    manifest_key: str
    manifest: dict[str, Any]
    deduplicated: bool = False  # True: an existing version had the same content; nothing was written


def version_prefix(dataset: str, version: int) -> str:
    return f"{PREFIX}{dataset}/v{version}/"


def _versions(s3: Any, bucket: str, dataset: str) -> tuple[int, list[int]]:
    """(highest N with data or a manifest, every N that has a manifest)."""
    paginator = s3.get_paginator("list_objects_v2")
    best, manifests = 0, []
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{PREFIX}{dataset}/v"):
        for obj in page.get("Contents", []):
            m = re.fullmatch(rf"{re.escape(PREFIX + dataset)}/v(\d+)/(manifest\.json|data\.jsonl)", obj["Key"])
            if m:
                best = max(best, int(m.group(1)))
                if m.group(2) == "manifest.json":
                    manifests.append(int(m.group(1)))
    return best, sorted(manifests, reverse=True)


def latest_version(s3: Any, bucket: str, dataset: str) -> int:
    """Highest N with a manifest under ``datasets/<dataset>/`` (0 when none)."""
    return _versions(s3, bucket, dataset)[0]


def version_with_digest(s3: Any, bucket: str, dataset: str, digest: str, manifests: list[int]) -> DatasetVersion | None:
    """The newest existing version whose data has sha256 ``digest``, or None."""
    for version in manifests:
        prefix = version_prefix(dataset, version)
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
        if manifest.get("sha256") == digest:
            return DatasetVersion(dataset, version, prefix + "data.jsonl", prefix + "manifest.json", manifest, deduplicated=True)
    return None


def _is_precondition_failure(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "412")


def publish_dataset_version(
    s3: Any,
    bucket: str,
    *,
    dataset: str,
    fmt: str,
    records: Sequence[dict[str, Any]],
    sources: Sequence[str],
    attempts: int = 5,
) -> DatasetVersion:
    """Write the next immutable version of ``dataset``: data.jsonl first, then its manifest.

    Content-addressed: when an existing version holds exactly these records (same sha256 of
    data.jsonl), that version is returned with ``deduplicated=True`` and nothing is written, so
    an identical re-upload neither adds a version nor starts a training run.
    """
    if not _NAME.fullmatch(dataset):
        raise ValueError(f"dataset name {dataset!r} must be 1-63 of a-z 0-9 '-', starting with a letter or digit")
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {FORMATS}")
    if not records:
        raise InvalidRecords(f"dataset {dataset}: no records to publish")
    for i, r in enumerate(records):
        try:
            validate_record(r, fmt)
        except ValueError as exc:
            raise InvalidRecords(f"dataset {dataset}: record {i}: {exc}") from None
    body = encode_jsonl(records)
    digest = hashlib.sha256(body).hexdigest()
    version, manifests = _versions(s3, bucket, dataset)
    existing = version_with_digest(s3, bucket, dataset, digest, manifests)
    if existing is not None:
        return existing
    for _ in range(attempts):
        version += 1
        prefix = version_prefix(dataset, version)
        try:
            s3.put_object(Bucket=bucket, Key=prefix + "data.jsonl", Body=body, IfNoneMatch="*", ContentType="application/x-ndjson")
        except Exception as exc:
            if _is_precondition_failure(exc):
                continue  # another writer took this N
            raise
        manifest = {
            "schema": SCHEMA,
            "dataset": dataset,
            "version": version,
            "format": fmt,
            "record_count": len(records),
            "sha256": digest,
            "sources": list(sources),
            "created_at": now_iso(),
        }
        s3.put_object(
            Bucket=bucket,
            Key=prefix + "manifest.json",
            Body=json.dumps(manifest, indent=2).encode("utf-8"),
            IfNoneMatch="*",
            ContentType="application/json",
        )
        return DatasetVersion(dataset, version, prefix + "data.jsonl", prefix + "manifest.json", manifest)
    raise RuntimeError(f"dataset {dataset}: could not claim a new version after {attempts} attempts")


def read_dataset_version(s3: Any, bucket: str, dataset: str, version: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Manifest and records, with the content hash and count checked against the manifest."""
    prefix = version_prefix(dataset, version)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    body = s3.get_object(Bucket=bucket, Key=prefix + "data.jsonl")["Body"].read()
    if hashlib.sha256(body).hexdigest() != manifest["sha256"]:
        raise ValueError(f"{prefix}data.jsonl does not match the sha256 in its manifest")
    records = [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]
    if len(records) != manifest["record_count"]:
        raise ValueError(f"{prefix}data.jsonl has {len(records)} records, manifest says {manifest['record_count']}")
    return manifest, records
