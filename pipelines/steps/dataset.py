"""Dataset versions (``datasets/<name>/v<N>/``): manifest checks, record validation, templates.

Contract (written by data prep and Ground Truth conversion): ``data.jsonl`` plus ``manifest.json``
``{"schema": "llmops.dataset-manifest/v1", "dataset", "version", "format", "record_count",
"sha256", "sources", "created_at"}``. Formats: ``instruction`` ({"instruction", "input"?,
"response"}) and ``text-label`` ({"text", "label"}).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

MANIFEST_SCHEMA = "llmops.dataset-manifest/v1"
FORMATS = ("instruction", "text-label")

# Used when the base model's tokenizer has no chat template: the widely used Alpaca layout.
INSTRUCTION_TEMPLATE = "### Instruction:\n{instruction}\n\n### Response:\n"
INSTRUCTION_WITH_INPUT_TEMPLATE = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
CLASSIFICATION_TEMPLATE = "### Text:\n{text}\n\n### Label:\n"


class DatasetError(Exception):
    """The dataset version cannot be used; the message says why, for the pipeline's failure reason."""


@dataclass(frozen=True)
class Manifest:
    dataset: str
    version: int
    format: str
    record_count: int
    sha256: str
    sources: tuple[str, ...] = ()
    created_at: str = ""


def parse_manifest(raw: bytes | str, where: str) -> Manifest:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{where}: manifest.json is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: manifest.json must be a JSON object")
    if data.get("schema") != MANIFEST_SCHEMA:
        raise DatasetError(f"{where}: manifest schema is {data.get('schema')!r}, expected {MANIFEST_SCHEMA!r}")
    fmt = data.get("format")
    if fmt not in FORMATS:
        raise DatasetError(f"{where}: manifest format {fmt!r} is not one of {', '.join(FORMATS)}")
    try:
        return Manifest(
            dataset=str(data["dataset"]),
            version=int(data["version"]),
            format=fmt,
            record_count=int(data["record_count"]),
            sha256=str(data["sha256"]),
            sources=tuple(data.get("sources") or ()),
            created_at=str(data.get("created_at") or ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: manifest.json is missing or has a bad field: {exc}") from None


def verify_data(manifest: Manifest, data: bytes, where: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest.sha256:
        raise DatasetError(
            f"{where}: data.jsonl sha256 {digest} does not match the manifest ({manifest.sha256}); "
            "dataset versions are immutable, so the data changed after it was published"
        )
    if not data.strip():
        raise DatasetError(f"{where}: dataset version is empty (data.jsonl has no records)")


def _nonempty_str(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        return None
    return value


def validate_record(line: str, fmt: str) -> tuple[dict[str, Any] | None, str | None]:
    """Return ``(record, None)`` or ``(None, reason)``; reasons are stable keys for the counts."""
    if not line.strip():
        return None, "empty_line"
    try:
        record = json.loads(line)
    except ValueError:
        return None, "invalid_json"
    if not isinstance(record, dict):
        return None, "not_an_object"
    if fmt == "instruction":
        if _nonempty_str(record, "instruction") is None:
            return None, "missing_instruction"
        if _nonempty_str(record, "response") is None:
            return None, "missing_response"
        if "input" in record and record["input"] is not None and not isinstance(record["input"], str):
            return None, "input_not_a_string"
        return {k: record[k] for k in ("instruction", "input", "response") if record.get(k) is not None}, None
    if _nonempty_str(record, "text") is None:
        return None, "missing_text"
    label = record.get("label")
    if isinstance(label, bool) or not isinstance(label, (str, int)) or not str(label).strip():
        return None, "missing_label"
    return {"text": record["text"], "label": str(label)}, None


@dataclass
class ValidationResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"line": n, "reason": r, "raw": s}

    @property
    def rejected_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.rejected:
            counts[item["reason"]] = counts.get(item["reason"], 0) + 1
        return dict(sorted(counts.items()))


def validate_lines(lines: Iterable[str], fmt: str) -> ValidationResult:
    result = ValidationResult()
    for number, line in enumerate(lines, start=1):
        record, reason = validate_record(line, fmt)
        if record is None:
            result.rejected.append({"line": number, "reason": reason, "raw": line[:2000]})
        else:
            result.records.append(record)
    return result


def to_prompt(record: dict[str, Any], fmt: str, tokenizer: Any | None = None) -> tuple[str, str]:
    """Render one record as ``(prompt, completion)``; the chat template wins when the model has one."""
    if fmt == "instruction":
        user = record["instruction"] if not record.get("input") else f"{record['instruction']}\n\n{record['input']}"
        completion = record["response"]
    else:
        user = f"Classify the text.\n\n{record['text']}"
        completion = record["label"]
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
        )
        return prompt, completion
    if fmt == "instruction":
        template = INSTRUCTION_WITH_INPUT_TEMPLATE if record.get("input") else INSTRUCTION_TEMPLATE
        return template.format(instruction=record["instruction"], input=record.get("input", "")), completion
    return CLASSIFICATION_TEMPLATE.format(text=record["text"]), completion
