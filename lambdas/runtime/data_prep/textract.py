"""Amazon Textract results: paging through a job's blocks and turning them into page text.

Reading order follows Textract: with LAYOUT the page's layout blocks come in reading order
(titles, headers, paragraphs, lists, tables, key-value regions); without it, LINE blocks come
in reading order and tables / form fields are placed before the first line below them.
Tables become Markdown tables; form fields become ``**key** value`` lines; page headers,
footers and printed page numbers are dropped because the page number is kept as data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lambdas.runtime.data_prep.errors import TextractJobFailed, TextractPartialSuccess, raise_if_throttled

Block = dict[str, Any]

FEATURES = ("LAYOUT", "TABLES", "FORMS")
_SKIPPED_LAYOUT = {"LAYOUT_HEADER", "LAYOUT_FOOTER", "LAYOUT_PAGE_NUMBER"}


@dataclass(frozen=True)
class Page:
    page: int  # 1-based
    text: str


@dataclass
class JobResult:
    job_id: str
    status: str
    status_message: str | None
    blocks: list[Block]
    warnings: list[dict[str, Any]] = field(default_factory=list)
    page_count: int | None = None
    model_version: str | None = None
    responses: int = 0  # GetDocument* calls made (one per NextToken page)


class JobNotFinished(RuntimeError):
    """Results were asked for while the job is still IN_PROGRESS."""


class ResultsOutOfOrder(RuntimeError):
    """Textract returned blocks of a page after blocks of a later page (streaming needs page order)."""


def request_token(*parts: str | None) -> str:
    """A ``ClientRequestToken`` (1-64 of [a-zA-Z0-9-_]) that is the same for the same parts.

    Textract answers a repeated token with the JobId it already started, so a retried start
    (Lambda or Step Functions retry of the same execution) never runs a second, billed job.
    """
    return hashlib.sha256("\x1f".join(p or "" for p in parts).encode("utf-8")).hexdigest()[:64]


def start_job(
    textract: Any,
    *,
    bucket: str,
    key: str,
    version_id: str | None,
    features: Sequence[str],
    topic_arn: str,
    role_arn: str,
    job_tag: str | None = None,
    kms_key_id: str | None = None,
    client_request_token: str | None = None,
) -> str:
    """Start text detection (no features) or document analysis; completion goes to SNS.

    ``client_request_token`` makes the start idempotent (see ``request_token``).
    """
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise ValueError(f"unknown Textract feature(s) {unknown}; allowed: {list(FEATURES)}")
    location: dict[str, Any] = {"Bucket": bucket, "Name": key}
    if version_id:
        location["Version"] = version_id
    kwargs: dict[str, Any] = {
        "DocumentLocation": {"S3Object": location},
        "NotificationChannel": {"SNSTopicArn": topic_arn, "RoleArn": role_arn},
    }
    if job_tag:
        kwargs["JobTag"] = job_tag[:64]
    if kms_key_id:
        kwargs["KMSKeyId"] = kms_key_id
    if client_request_token:
        kwargs["ClientRequestToken"] = client_request_token
    try:
        if features:
            response = textract.start_document_analysis(FeatureTypes=list(features), **kwargs)
        else:
            response = textract.start_document_text_detection(**kwargs)
    except Exception as exc:
        raise_if_throttled(exc, "Textract")
        raise
    return response["JobId"]


def fetch_job(textract: Any, job_id: str, *, analysis: bool, max_results: int = 1000) -> JobResult:
    """Read every block of a finished job, following ``NextToken`` to the last page of results."""
    get = textract.get_document_analysis if analysis else textract.get_document_text_detection
    request: dict[str, Any] = {"JobId": job_id, "MaxResults": max_results}
    result: JobResult | None = None
    while True:
        try:
            response = get(**request)
        except Exception as exc:
            raise_if_throttled(exc, "Textract")
            raise
        status = response["JobStatus"]
        if status == "IN_PROGRESS":
            raise JobNotFinished(f"Textract job {job_id} is still IN_PROGRESS")
        if result is None:
            result = JobResult(
                job_id=job_id,
                status=status,
                status_message=response.get("StatusMessage"),
                blocks=[],
                page_count=(response.get("DocumentMetadata") or {}).get("Pages"),
                model_version=response.get("DetectDocumentTextModelVersion") or response.get("AnalyzeDocumentModelVersion"),
            )
        result.responses += 1
        result.blocks.extend(response.get("Blocks", []))
        result.warnings.extend(response.get("Warnings", []))
        token = response.get("NextToken")
        if not token or status == "FAILED":
            return result
        request["NextToken"] = token


def stream_job(
    textract: Any, job_id: str, *, analysis: bool, on_page: Callable[[Page], None], max_results: int = 1000
) -> JobResult:
    """Page through a finished job, rendering each page as soon as its blocks are complete.

    Only the current page's blocks (plus one response of up to ``max_results``) are held, not
    the whole document's: a 3,000-page job would otherwise keep millions of blocks in memory.
    Textract returns results in page order; a block of an already rendered page raises
    ``ResultsOutOfOrder`` rather than producing a page with missing text. Pages go to
    ``on_page`` only when the job SUCCEEDED; otherwise the rest is read for its warnings.
    """
    get = textract.get_document_analysis if analysis else textract.get_document_text_detection
    request: dict[str, Any] = {"JobId": job_id, "MaxResults": max_results}
    result: JobResult | None = None
    current: int | None = None
    held: list[Block] = []
    done: set[int] = set()

    def flush() -> None:
        if current is not None and held:
            on_page(_render_page(current, held))
            done.add(current)

    while True:
        try:
            response = get(**request)
        except Exception as exc:
            raise_if_throttled(exc, "Textract")
            raise
        status = response["JobStatus"]
        if status == "IN_PROGRESS":
            raise JobNotFinished(f"Textract job {job_id} is still IN_PROGRESS")
        if result is None:
            result = JobResult(
                job_id=job_id,
                status=status,
                status_message=response.get("StatusMessage"),
                blocks=[],
                page_count=(response.get("DocumentMetadata") or {}).get("Pages"),
                model_version=response.get("DetectDocumentTextModelVersion") or response.get("AnalyzeDocumentModelVersion"),
            )
        result.responses += 1
        result.warnings.extend(response.get("Warnings", []))
        if result.status == "SUCCEEDED":
            for block in response.get("Blocks", []):
                number = int(block.get("Page", 1))
                if number != current:
                    if number in done or (current is not None and number < current):
                        raise ResultsOutOfOrder(f"Textract job {job_id}: blocks of page {number} came after page {current}")
                    flush()
                    current, held = number, []
                held.append(block)
        token = response.get("NextToken")
        if not token or status == "FAILED":
            flush()
            return result
        request["NextToken"] = token


def check_status(result: JobResult) -> None:
    """Raise the workflow error for a job that did not fully succeed."""
    if result.status == "FAILED":
        raise TextractJobFailed(f"Textract job {result.job_id} FAILED: {result.status_message or 'no status message'}")
    if result.status == "PARTIAL_SUCCESS":
        missing = sorted({p for w in result.warnings for p in w.get("Pages", [])})
        codes = sorted({w.get("ErrorCode", "?") for w in result.warnings})
        raise TextractPartialSuccess(
            f"Textract job {result.job_id} ended PARTIAL_SUCCESS: pages {missing or 'unknown'} not processed ({', '.join(codes) or 'no warning codes'})"
        )
    if result.status != "SUCCEEDED":
        raise TextractJobFailed(f"Textract job {result.job_id} ended with unexpected status {result.status!r}")


# --- blocks -> text ---------------------------------------------------------------------------


def _child_ids(block: Block, rel_type: str = "CHILD") -> list[str]:
    ids: list[str] = []
    for rel in block.get("Relationships") or []:
        if rel.get("Type") == rel_type:
            ids.extend(rel.get("Ids", []))
    return ids


def _box(block: Block) -> dict[str, float]:
    return (block.get("Geometry") or {}).get("BoundingBox") or {"Top": 0.0, "Left": 0.0, "Width": 0.0, "Height": 0.0}


def _center_inside(inner: Block, outer: Block) -> bool:
    a, b = _box(inner), _box(outer)
    cx, cy = a["Left"] + a["Width"] / 2, a["Top"] + a["Height"] / 2
    return b["Left"] <= cx <= b["Left"] + b["Width"] and b["Top"] <= cy <= b["Top"] + b["Height"]


class _PageRenderer:
    def __init__(self, blocks: Sequence[Block], by_id: dict[str, Block]) -> None:
        self.blocks = blocks
        self.by_id = by_id
        self.tables = [b for b in blocks if b["BlockType"] == "TABLE"]
        self.keys = [b for b in blocks if b["BlockType"] == "KEY_VALUE_SET" and "KEY" in (b.get("EntityTypes") or [])]
        self.emitted: set[str] = set()

    # words and cells
    def _words(self, block: Block) -> list[Block]:
        return [self.by_id[i] for i in _child_ids(block) if i in self.by_id]

    def _content(self, block: Block) -> str:
        parts = []
        for child in self._words(block):
            if child["BlockType"] == "WORD":
                parts.append(child.get("Text", ""))
            elif child["BlockType"] == "SELECTION_ELEMENT":
                parts.append("[x]" if child.get("SelectionStatus") == "SELECTED" else "[ ]")
        return " ".join(p for p in parts if p)

    def _word_ids(self, block: Block) -> set[str]:
        return {w["Id"] for w in self._words(block)}

    def table_word_ids(self, table: Block) -> set[str]:
        ids: set[str] = set()
        for cell_id in _child_ids(table):
            cell = self.by_id.get(cell_id)
            if cell is not None:
                ids |= self._word_ids(cell)
        return ids

    def key_word_ids(self, key: Block) -> set[str]:
        ids = self._word_ids(key)
        for value_id in _child_ids(key, "VALUE"):
            if value_id in self.by_id:
                ids |= self._word_ids(self.by_id[value_id])
        return ids

    def render_table(self, table: Block) -> str:
        cells = [self.by_id[i] for i in _child_ids(table) if i in self.by_id and self.by_id[i]["BlockType"] == "CELL"]
        if not cells:
            return ""
        rows = max(c.get("RowIndex", 1) + c.get("RowSpan", 1) - 1 for c in cells)
        cols = max(c.get("ColumnIndex", 1) + c.get("ColumnSpan", 1) - 1 for c in cells)
        grid = [["" for _ in range(cols)] for _ in range(rows)]
        header_rows: set[int] = set()
        for cell in cells:
            r, c = cell.get("RowIndex", 1) - 1, cell.get("ColumnIndex", 1) - 1
            grid[r][c] = self._content(cell)
            if "COLUMN_HEADER" in (cell.get("EntityTypes") or []):
                header_rows.add(r)
        # A merged cell's text is split over the cells under it: show it once, top-left.
        for merged_id in _child_ids(table, "MERGED_CELL"):
            merged = self.by_id.get(merged_id)
            if merged is None:
                continue
            parts = [self.by_id[i] for i in _child_ids(merged) if i in self.by_id]
            parts.sort(key=lambda c: (c.get("RowIndex", 1), c.get("ColumnIndex", 1)))
            text = " ".join(t for t in (self._content(p) for p in parts) if t)
            for p in parts:
                grid[p.get("RowIndex", 1) - 1][p.get("ColumnIndex", 1) - 1] = ""
            grid[merged.get("RowIndex", 1) - 1][merged.get("ColumnIndex", 1) - 1] = text
        # Markdown needs exactly one header row: the last column-header row, else the first row.
        head = max(header_rows) if header_rows else 0
        header = [" ".join(grid[r][c] for r in range(head + 1) if grid[r][c]) for c in range(cols)]
        body = grid[head + 1 :]

        def row(values: Iterable[str]) -> str:
            return "| " + " | ".join(v.replace("|", "\\|").replace("\n", " ") for v in values) + " |"

        lines = [row(header), "| " + " | ".join("---" for _ in range(cols)) + " |"]
        lines.extend(row(r) for r in body)
        return "\n".join(lines)

    def render_key(self, key: Block) -> str:
        value_text = " ".join(
            t for t in (self._content(self.by_id[v]) for v in _child_ids(key, "VALUE") if v in self.by_id) if t
        )
        key_text = self._content(key)
        return f"**{key_text}** {value_text}".rstrip()

    # page layouts
    def render_with_layout(self) -> str:
        out: list[str] = []
        list_items = {i for b in self.blocks if b["BlockType"] == "LAYOUT_LIST" for i in _child_ids(b)}
        for block in self.blocks:
            kind = block["BlockType"]
            if not kind.startswith("LAYOUT_") or kind in _SKIPPED_LAYOUT:
                continue
            if block["Id"] in list_items:
                continue  # rendered as an item of its LAYOUT_LIST
            if kind == "LAYOUT_TABLE":
                tables = [t for t in self.tables if t["Id"] not in self.emitted and _center_inside(t, block)]
                if tables:
                    for t in tables:
                        self.emitted.add(t["Id"])
                        out.append(self.render_table(t))
                    continue
            if kind == "LAYOUT_KEY_VALUE":
                keys = [k for k in self.keys if k["Id"] not in self.emitted and _center_inside(k, block)]
                if keys:
                    for k in keys:
                        self.emitted.add(k["Id"])
                    out.append("\n".join(self.render_key(k) for k in keys))
                    continue
            if kind == "LAYOUT_LIST":
                items = []
                for child_id in _child_ids(block):
                    child = self.by_id.get(child_id)
                    if child is None:
                        continue
                    items.append("- " + self._lines_text(child))
                out.append("\n".join(items))
                continue
            # Without TABLES/FORMS results, a table or form region keeps its line breaks.
            sep = "\n" if kind in ("LAYOUT_TABLE", "LAYOUT_KEY_VALUE") else " "
            text = self._lines_text(block, sep)
            if not text:
                continue
            if kind == "LAYOUT_TITLE":
                out.append("# " + text)
            elif kind == "LAYOUT_SECTION_HEADER":
                out.append("## " + text)
            else:
                out.append(text)
        # Tables Textract found outside any LAYOUT_TABLE still belong on the page.
        out.extend(self.render_table(t) for t in self.tables if t["Id"] not in self.emitted)
        return "\n\n".join(p for p in out if p)

    def _lines_text(self, layout: Block, sep: str = " ") -> str:
        texts = []
        for child_id in _child_ids(layout):
            child = self.by_id.get(child_id)
            if child is None:
                continue
            if child["BlockType"] == "LINE":
                texts.append(child.get("Text", ""))
            elif child["BlockType"].startswith("LAYOUT_"):
                texts.append(self._lines_text(child, sep))
        return sep.join(t for t in texts if t)

    def render_lines(self) -> str:
        consumed: set[str] = set()
        regions: list[tuple[float, str, str]] = []  # (top, kind, markdown)
        for table in self.tables:
            consumed |= self.table_word_ids(table)
            regions.append((_box(table)["Top"], "table", self.render_table(table)))
        for key in self.keys:
            consumed |= self.key_word_ids(key)
            regions.append((_box(key)["Top"], "field", self.render_key(key)))
        regions.sort(key=lambda r: r[0])
        parts: list[tuple[str, str]] = []
        for line in (b for b in self.blocks if b["BlockType"] == "LINE"):
            words = _child_ids(line)
            if words and all(w in consumed for w in words):
                continue
            top = _box(line)["Top"]
            while regions and regions[0][0] <= top:
                _, kind, md = regions.pop(0)
                parts.append((kind, md))
            parts.append(("line", line.get("Text", "")))
        parts.extend((kind, md) for _, kind, md in regions)
        # Lines join with newlines; a table is set off by blank lines so Markdown sees it.
        text = ""
        prev = None
        for kind, md in parts:
            if not md:
                continue
            if prev is None:
                sep = ""
            elif kind == "table" or prev == "table":
                sep = "\n\n"
            else:
                sep = "\n"
            text += sep + md
            prev = kind
        return text


def _render_page(number: int, page_blocks: Sequence[Block], by_id: dict[str, Block] | None = None) -> Page:
    # Relationships (words of a line, cells of a table) stay within a page.
    by_id = by_id if by_id is not None else {b["Id"]: b for b in page_blocks if "Id" in b}
    renderer = _PageRenderer(page_blocks, by_id)
    if any(b["BlockType"].startswith("LAYOUT_") for b in page_blocks):
        return Page(number, renderer.render_with_layout())
    return Page(number, renderer.render_lines())


def blocks_to_pages(blocks: Sequence[Block]) -> list[Page]:
    """Turn a job's blocks (all NextToken pages together) into one Markdown text per page."""
    by_id = {b["Id"]: b for b in blocks if "Id" in b}
    per_page: dict[int, list[Block]] = {}
    for block in blocks:
        per_page.setdefault(int(block.get("Page", 1)), []).append(block)
    return [_render_page(number, per_page[number], by_id) for number in sorted(per_page)]
