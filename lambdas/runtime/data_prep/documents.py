"""What an uploaded file is, whether the workflow can read it, and its stable document id.

Checks run on the object's size, its first bytes and its last bytes only, so a 500 MB PDF is
judged without downloading it: type by extension *and* magic bytes, Textract's size limits,
an ``/Encrypt`` entry in a PDF trailer (password-protected), and a PDF that lacks ``%%EOF``
near its end (truncated upload).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

from lambdas.runtime.data_prep.errors import CorruptDocument, DocumentTooLarge, EncryptedDocument, UnsupportedDocument

MB = 1024 * 1024
# Textract asynchronous limits: 500 MB for PDF and TIFF, 10 MB for JPEG and PNG.
TEXTRACT_TYPES = {
    ".pdf": ("application/pdf", 500 * MB),
    ".tif": ("image/tiff", 500 * MB),
    ".tiff": ("image/tiff", 500 * MB),
    ".png": ("image/png", 10 * MB),
    ".jpg": ("image/jpeg", 10 * MB),
    ".jpeg": ("image/jpeg", 10 * MB),
}
# Plain text skips Textract; the cap keeps one document within a Lambda's memory and time.
TEXT_TYPES = {".txt": 20 * MB, ".md": 20 * MB, ".markdown": 20 * MB}
# Fine-tuning records uploaded as JSONL under raw/datasets/<dataset>/.
RECORDS_SUFFIX = ".jsonl"
RECORDS_MAX = 100 * MB
DATASET_PREFIX = "raw/datasets/"

_MAGIC = {
    "application/pdf": (b"%PDF-",),
    "image/tiff": (b"II*\x00", b"MM\x00*"),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}
HEAD_BYTES = 64 * 1024
TAIL_BYTES = 64 * 1024
_ENCRYPT = re.compile(rb"/Encrypt\s*(?:\d+\s+\d+\s+R|<<)")


@dataclass(frozen=True)
class SourceDocument:
    bucket: str
    key: str
    version_id: str | None
    size: int
    kind: str  # "textract" | "text" | "records"
    content_type: str
    document_id: str
    dataset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceDocument:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


def document_id_for(key: str) -> str:
    """A stable, readable id from the object key: re-uploads of a key replace its curated doc."""
    stem = key[len("raw/") :] if key.startswith("raw/") else key
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:80].strip("-") or "document"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return f"{slug}-{digest}"


def dataset_name_for(key: str) -> str | None:
    """``raw/datasets/<name>/<file>.jsonl`` -> ``<name>``; None for any other key."""
    if not key.startswith(DATASET_PREFIX) or not key.endswith(RECORDS_SUFFIX):
        return None
    parts = key[len(DATASET_PREFIX) :].split("/")
    if len(parts) < 2 or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", parts[0]):
        return None
    return parts[0]


def classify_upload(
    *, bucket: str, key: str, version_id: str | None, size: int, head: bytes, tail: bytes
) -> SourceDocument:
    """Decide how the workflow reads an upload, or raise the error that quarantines it."""
    suffix = PurePosixPath(key).suffix.lower()
    doc_id = document_id_for(key)
    if size == 0:
        raise CorruptDocument(f"{key} is empty (0 bytes)")
    dataset = dataset_name_for(key)
    if dataset is not None:
        if size > RECORDS_MAX:
            raise DocumentTooLarge(f"{key} is {size} bytes; dataset uploads are limited to {RECORDS_MAX} bytes")
        _require_utf8(key, head)
        return SourceDocument(bucket, key, version_id, size, "records", "application/x-ndjson", doc_id, dataset)
    if suffix == RECORDS_SUFFIX:
        raise UnsupportedDocument(
            f"{key}: JSONL files are read only as dataset uploads under {DATASET_PREFIX}<dataset-name>/ "
            "(dataset names are lower-case letters, digits and '-')"
        )
    if suffix in TEXT_TYPES:
        if size > TEXT_TYPES[suffix]:
            raise DocumentTooLarge(f"{key} is {size} bytes; text documents are limited to {TEXT_TYPES[suffix]} bytes")
        _require_utf8(key, head)
        return SourceDocument(bucket, key, version_id, size, "text", "text/plain", doc_id)
    if suffix not in TEXTRACT_TYPES:
        allowed = sorted(set(TEXTRACT_TYPES) | set(TEXT_TYPES) | {RECORDS_SUFFIX})
        raise UnsupportedDocument(f"{key}: file type {suffix or '(none)'!r} is not supported; allowed: {', '.join(allowed)}")
    content_type, limit = TEXTRACT_TYPES[suffix]
    if size > limit:
        raise DocumentTooLarge(
            f"{key} is {size} bytes; Textract's asynchronous limit for {content_type} is {limit // MB} MB ({limit} bytes)"
        )
    if not head.startswith(_MAGIC[content_type]):
        raise CorruptDocument(f"{key}: content does not match its {suffix} extension (no {content_type} signature)")
    if content_type == "application/pdf":
        if _ENCRYPT.search(tail) or _ENCRYPT.search(head):
            raise EncryptedDocument(f"{key} is an encrypted (password-protected) PDF; upload an unencrypted copy")
        if b"%%EOF" not in tail[-2048:] and b"%%EOF" not in tail:
            raise CorruptDocument(f"{key}: PDF has no %%EOF marker at its end (truncated or corrupt upload)")
    return SourceDocument(bucket, key, version_id, size, "textract", content_type, doc_id)


def _require_utf8(key: str, head: bytes) -> None:
    if b"\x00" in head:
        raise CorruptDocument(f"{key}: contains NUL bytes; text uploads must be UTF-8 text")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The head may end inside a multi-byte character: only an error before the last 3 bytes counts.
        if exc.start < len(head) - 3:
            raise CorruptDocument(f"{key}: not valid UTF-8 at byte {exc.start}") from None


def read_head_tail(s3: Any, bucket: str, key: str, version_id: str | None) -> tuple[int, bytes, bytes]:
    """Size plus the first and last 64 KB of an object, by ranged GETs."""
    extra = {"VersionId": version_id} if version_id else {}
    size = s3.head_object(Bucket=bucket, Key=key, **extra)["ContentLength"]
    if size == 0:
        return 0, b"", b""
    head = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{min(size, HEAD_BYTES) - 1}", **extra)["Body"].read()
    if size <= HEAD_BYTES:
        return size, head, head
    tail = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{TAIL_BYTES}", **extra)["Body"].read()
    return size, head, tail


# --- local extraction (llmops local prep): pypdf stands in for Textract -------------------------


def pdf_pages(data: bytes, name: str) -> list[tuple[int, str]]:
    """Text of each PDF page with pypdf: plain text in content order, no tables or layout."""
    import io

    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise EncryptedDocument(f"{name} is an encrypted (password-protected) PDF; upload an unencrypted copy")
        return [(i + 1, (page.extract_text() or "").strip()) for i, page in enumerate(reader.pages)]
    except FileNotDecryptedError:
        raise EncryptedDocument(f"{name} is an encrypted (password-protected) PDF; upload an unencrypted copy") from None
    except PdfReadError as exc:
        raise CorruptDocument(f"{name}: PDF cannot be read ({exc})") from None
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        # pypdf raises plain exceptions on some malformed structures.
        raise CorruptDocument(f"{name}: PDF cannot be read ({type(exc).__name__}: {exc})") from None


def text_pages(text: str) -> list[tuple[int, str]]:
    """Plain text is one page; form feeds (``\\f``) split pages, as in ``pdftotext`` output."""
    parts = text.split("\f")
    return [(i + 1, part.strip("\n")) for i, part in enumerate(parts)]


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
