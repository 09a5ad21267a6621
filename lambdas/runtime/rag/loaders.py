"""Turn the bytes of an uploaded document into page texts, or reject it with a reason.

Formats: plain text, Markdown, HTML (stdlib parser), PDF (pypdf, pure Python), Amazon Textract
JSON output, and the data-prep workflow's curated documents (``*.curated.json``). JSON inputs are
validated into typed models (``TextractResponse``, ``CuratedDocument``), and any failure while
parsing one document becomes ``DocumentRejected`` with a reason: one bad file is quarantined,
never a crash that retries and dead-letters the message without saying why.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

CURATED_SCHEMA = "llmops.curated-document/v1"
# A Lambda has 10 GB of memory at most and pypdf holds the whole file; 50 MB keeps a 2 GB function safe.
DEFAULT_MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
TEXT_SUFFIXES = (".txt", ".text", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
SUPPORTED_SUFFIXES = (*TEXT_SUFFIXES, *HTML_SUFFIXES, ".pdf", ".curated.json", ".textract.json", ".json")


class DocumentRejected(Exception):
    """The document cannot be indexed; ``reason`` is a short code, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    text: str


@dataclass(frozen=True)
class SourceRef:
    """Where a document came from, as cited in answers."""

    bucket: str | None
    key: str
    version: str | None = None
    sequencer: str | None = None  # the S3 event's sequencer, for ordering out-of-order events


@dataclass(frozen=True)
class LoadedDocument:
    pages: tuple[Page, ...]
    document_type: str  # text | markdown | html | pdf | textract | curated
    metadata: dict[str, Any] = field(default_factory=dict)  # user metadata copied onto chunks
    source: SourceRef | None = None  # set when the file names another original (curated documents)


def document_type_of(name: str) -> str | None:
    """The loader for a file name, by suffix; ``None`` when the format is not supported."""
    lower = name.lower()
    if lower.endswith(".curated.json"):
        return "curated"
    if lower.endswith(".json"):
        return "textract"
    if lower.endswith((".md", ".markdown")):
        return "markdown"
    if lower.endswith(TEXT_SUFFIXES):
        return "text"
    if lower.endswith(HTML_SUFFIXES):
        return "html"
    if lower.endswith(".pdf"):
        return "pdf"
    return None


def load_document(name: str, data: bytes, *, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> LoadedDocument:
    """Parse ``data`` (the content of file ``name``) or raise ``DocumentRejected``."""
    kind = check_supported(name)
    check_size(len(data), max_bytes)
    if not data.strip():
        raise DocumentRejected("empty", "the document is empty")
    try:
        document = _parse(kind, data)
    except DocumentRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a parser trips on is this document's fault, not the run's
        raise DocumentRejected("corrupt", f"could not read the {kind} document: {type(exc).__name__}: {exc}"[:500]) from None
    document = dataclasses.replace(document, pages=tuple(Page(p.number, clean_text(p.text)) for p in document.pages))
    if not any(page.text.strip() for page in document.pages):
        raise DocumentRejected("no-text", "the document contains no extractable text")
    return document


def _parse(kind: str, data: bytes) -> LoadedDocument:
    if kind == "pdf":
        return _load_pdf(data)
    if kind == "curated":
        return _load_curated(_json(data))
    if kind == "textract":
        return _load_textract(_json(data))
    text = _decode(data)
    if kind == "html":
        text = html_to_text(text)
    return LoadedDocument(pages=(Page(1, text),), document_type=kind)


def clean_text(text: str) -> str:
    """Drop NUL (PostgreSQL text refuses it) and replace lone surrogates (JSON "\\ud800"; tokenizers refuse them)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _problems(exc: ValidationError, limit: int = 3) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}" for e in exc.errors()[:limit])


def check_supported(name: str) -> str:
    kind = document_type_of(name)
    if kind is None:
        raise DocumentRejected(
            "unsupported-type",
            f"unsupported file type for {name!r}; supported suffixes: {', '.join(SUPPORTED_SUFFIXES)}",
        )
    return kind


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise DocumentRejected("oversized", f"the document is {size} bytes; the limit is {max_bytes} bytes")


def _decode(data: bytes) -> str:
    # NUL bytes never occur in text files but are common in binaries renamed to .txt.
    if b"\x00" in data[:65536]:
        raise DocumentRejected("binary", "binary content (NUL bytes) in a text document")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentRejected("binary", f"not valid UTF-8 text (byte {exc.start})") from None


def _json(data: bytes) -> Any:
    try:
        return json.loads(_decode(data))
    except json.JSONDecodeError as exc:
        raise DocumentRejected("corrupt", f"invalid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise DocumentRejected("corrupt", "JSON nested too deeply to read") from None


class _HtmlText(HTMLParser):
    """Collects visible text, with a line break wherever a block element starts or ends."""

    SKIP = frozenset({"script", "style", "head", "noscript", "template", "svg"})
    BLOCK = frozenset(
        {"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header", "footer",
         "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "hr", "dd", "dt", "title"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    text, blank = [], False
    for line in lines:
        if line:
            text.append(line)
            blank = False
        elif not blank and text:
            text.append("")
            blank = True
    return "\n".join(text).strip()


def _load_pdf(data: bytes) -> LoadedDocument:
    from pypdf import PdfReader  # ~60 ms import: only when a PDF arrives
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentRejected("encrypted", "the PDF is password-protected")
        pages = tuple(Page(i, (page.extract_text() or "").strip()) for i, page in enumerate(reader.pages, 1))
    except DocumentRejected:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        # pypdf surfaces damaged files through several exception types.
        raise DocumentRejected("corrupt", f"corrupt PDF: {type(exc).__name__}: {exc}") from None
    if not any(page.text for page in pages):
        raise DocumentRejected(
            "no-text", "the PDF has no text layer (scanned?); send it through the data-prep workflow for OCR"
        )
    return LoadedDocument(pages=pages, document_type="pdf")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TextractBlock(_Lenient):
    block_type: StrictStr = Field(alias="BlockType")
    page: Annotated[StrictInt, Field(ge=1)] = Field(default=1, alias="Page")
    text: StrictStr | None = Field(default=None, alias="Text")


class TextractResponse(_Lenient):
    """One DetectDocumentText/AnalyzeDocument (or Get*) response: only the fields indexing reads."""

    blocks: list[TextractBlock] = Field(alias="Blocks")


class CuratedPage(_Lenient):
    page: Annotated[StrictInt, Field(ge=1)]
    text: StrictStr


class CuratedSource(_Lenient):
    bucket: StrictStr | None = None
    key: StrictStr
    version_id: StrictStr | None = None


class CuratedMetadata(_Lenient):
    language: StrictStr | None = None
    # Data prep writes Comprehend's result here (an object); only a plain label becomes document_type.
    classification: Any = None


class CuratedDocument(_Lenient):
    """``llmops.curated-document/v1`` as the data-prep workflow writes it."""

    schema_: Literal["llmops.curated-document/v1"] = Field(alias="schema")
    pages: list[CuratedPage]
    source: CuratedSource | None = None
    metadata: CuratedMetadata | None = None


def _load_textract(payload: Any) -> LoadedDocument:
    """Textract DetectDocumentText/AnalyzeDocument output: one response, or a list of paged responses."""
    responses = payload if isinstance(payload, list) else [payload]
    lines: dict[int, list[str]] = {}
    for number, response in enumerate(responses):
        if not isinstance(response, dict) or not isinstance(response.get("Blocks"), list):
            raise DocumentRejected("corrupt", "JSON is neither Textract output (no 'Blocks' list) nor a curated document")
        try:
            parsed = TextractResponse.model_validate(response)
        except ValidationError as exc:
            where = f"response {number}: " if len(responses) > 1 else ""
            raise DocumentRejected("corrupt", f"bad Textract output: {where}{_problems(exc)}") from None
        for block in parsed.blocks:
            if block.block_type == "LINE" and block.text is not None:
                lines.setdefault(block.page, []).append(block.text)
    pages = tuple(Page(number, "\n".join(texts)) for number, texts in sorted(lines.items()))
    return LoadedDocument(pages=pages, document_type="textract")


def _load_curated(payload: Any) -> LoadedDocument:
    if not isinstance(payload, dict) or payload.get("schema") != CURATED_SCHEMA:
        raise DocumentRejected("corrupt", f"curated document must have schema {CURATED_SCHEMA!r}")
    try:
        curated = CuratedDocument.model_validate(payload)
    except ValidationError as exc:
        raise DocumentRejected("corrupt", f"bad curated document: {_problems(exc)}") from None
    metadata: dict[str, Any] = {}
    if curated.metadata is not None and curated.metadata.language is not None:
        metadata["language"] = curated.metadata.language
    if curated.metadata is not None and isinstance(curated.metadata.classification, str):
        metadata["document_type"] = curated.metadata.classification
    ref = None
    if curated.source is not None:
        ref = SourceRef(bucket=curated.source.bucket, key=curated.source.key, version=curated.source.version_id)
    pages = tuple(Page(page.page, page.text) for page in curated.pages)
    return LoadedDocument(pages=pages, document_type="curated", metadata=metadata, source=ref)
