"""Builders of Textract Block lists in the shapes of the Textract API reference (Block, Geometry,
Relationship), for realistic multi-page GetDocumentAnalysis / GetDocumentTextDetection answers."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    # Textract ids are UUIDs; any unique string exercises the same lookups.
    return f"{prefix}-{next(_ids):08d}-0000-4000-8000-000000000000"


def geometry(left: float, top: float, width: float, height: float) -> dict[str, Any]:
    return {
        "BoundingBox": {"Width": width, "Height": height, "Left": left, "Top": top},
        "Polygon": [
            {"X": left, "Y": top},
            {"X": left + width, "Y": top},
            {"X": left + width, "Y": top + height},
            {"X": left, "Y": top + height},
        ],
    }


class PageBuilder:
    """Blocks of one page, in the order Textract returns them (PAGE first, then reading order)."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.page = {"BlockType": "PAGE", "Id": _id("page"), "Page": number, "Geometry": geometry(0, 0, 1, 1), "Relationships": [{"Type": "CHILD", "Ids": []}]}
        self.blocks: list[dict[str, Any]] = [self.page]
        self.top = 0.05

    def _add(self, block: dict[str, Any], child_of_page: bool = True) -> dict[str, Any]:
        block.setdefault("Page", self.number)
        self.blocks.append(block)
        if child_of_page:
            self.page["Relationships"][0]["Ids"].append(block["Id"])
        return block

    def words(self, text: str, left: float, top: float) -> list[dict[str, Any]]:
        out = []
        x = left
        for w in text.split():
            width = 0.012 * len(w)
            out.append(self._add({"BlockType": "WORD", "Id": _id("word"), "Text": w, "TextType": "PRINTED", "Confidence": 99.1, "Geometry": geometry(x, top, width, 0.012)}, child_of_page=False))
            x += width + 0.01
        return out

    def line(self, text: str, left: float = 0.1, top: float | None = None) -> dict[str, Any]:
        top = self.top if top is None else top
        self.top = max(self.top, top) + 0.03
        words = self.words(text, left, top)
        return self._add(
            {
                "BlockType": "LINE",
                "Id": _id("line"),
                "Text": text,
                "Confidence": 99.3,
                "Geometry": geometry(left, top, 0.8, 0.012),
                "Relationships": [{"Type": "CHILD", "Ids": [w["Id"] for w in words]}],
            }
        )

    def layout(self, kind: str, lines: list[str], top: float | None = None) -> dict[str, Any]:
        top = self.top if top is None else top
        line_blocks = [self.line(t, top=top + 0.03 * i) for i, t in enumerate(lines)]
        return self._add(
            {
                "BlockType": kind,
                "Id": _id("layout"),
                "Confidence": 95.0,
                "Geometry": geometry(0.08, top - 0.005, 0.84, 0.03 * max(1, len(lines)) + 0.01),
                "Relationships": [{"Type": "CHILD", "Ids": [b["Id"] for b in line_blocks]}],
            }
        )

    def layout_list(self, items: list[str]) -> dict[str, Any]:
        top = self.top
        texts = [self.layout("LAYOUT_TEXT", [item]) for item in items]
        return self._add(
            {
                "BlockType": "LAYOUT_LIST",
                "Id": _id("layout"),
                "Confidence": 90.0,
                "Geometry": geometry(0.08, top, 0.84, self.top - top),
                "Relationships": [{"Type": "CHILD", "Ids": [b["Id"] for b in texts]}],
            }
        )

    def table(self, rows: list[list[str]], *, header: bool = True, merged: list[tuple[int, int, int, int]] = (), with_lines: bool = True) -> dict[str, Any]:
        """A TABLE with CELL children (and MERGED_CELL blocks: (row, col, row_span, col_span), 1-based)."""
        top = self.top
        cells = []
        for r, row in enumerate(rows, start=1):
            row_top = top + 0.03 * (r - 1)
            for c, text in enumerate(row, start=1):
                left = 0.1 + 0.2 * (c - 1)
                words = self.words(text, left, row_top) if text else []
                cell = {
                    "BlockType": "CELL",
                    "Id": _id("cell"),
                    "RowIndex": r,
                    "ColumnIndex": c,
                    "RowSpan": 1,
                    "ColumnSpan": 1,
                    "Confidence": 88.0,
                    "Geometry": geometry(left, row_top, 0.2, 0.03),
                }
                if header and r == 1:
                    cell["EntityTypes"] = ["COLUMN_HEADER"]
                if words:
                    cell["Relationships"] = [{"Type": "CHILD", "Ids": [w["Id"] for w in words]}]
                cells.append(self._add(cell, child_of_page=False))
        if with_lines:
            # Textract also reports the table's text as LINE blocks.
            for r in range(1, len(rows) + 1):
                row_top = top + 0.03 * (r - 1)
                line_words = [w for c in cells if c["RowIndex"] == r for w in self._cell_words(c)]
                if line_words:
                    self._add(
                        {
                            "BlockType": "LINE",
                            "Id": _id("line"),
                            "Text": " ".join(w["Text"] for w in line_words),
                            "Confidence": 99.0,
                            "Geometry": geometry(0.1, row_top, 0.8, 0.012),
                            "Relationships": [{"Type": "CHILD", "Ids": [w["Id"] for w in line_words]}],
                        }
                    )
        rels = [{"Type": "CHILD", "Ids": [c["Id"] for c in cells]}]
        merged_ids = []
        for (r, c, rs, cs) in merged:
            children = [x["Id"] for x in cells if r <= x["RowIndex"] < r + rs and c <= x["ColumnIndex"] < c + cs]
            m = self._add(
                {
                    "BlockType": "MERGED_CELL",
                    "Id": _id("merged"),
                    "RowIndex": r,
                    "ColumnIndex": c,
                    "RowSpan": rs,
                    "ColumnSpan": cs,
                    "Geometry": geometry(0.1 + 0.2 * (c - 1), top + 0.03 * (r - 1), 0.2 * cs, 0.03 * rs),
                    "Relationships": [{"Type": "CHILD", "Ids": children}],
                },
                child_of_page=False,
            )
            merged_ids.append(m["Id"])
        if merged_ids:
            rels.append({"Type": "MERGED_CELL", "Ids": merged_ids})
        self.top = top + 0.03 * len(rows) + 0.02
        return self._add(
            {
                "BlockType": "TABLE",
                "Id": _id("table"),
                "EntityTypes": ["STRUCTURED_TABLE"],
                "Confidence": 97.0,
                "Geometry": geometry(0.1, top, 0.2 * len(rows[0]), 0.03 * len(rows)),
                "Relationships": rels,
            }
        )

    def _cell_words(self, cell: dict[str, Any]) -> list[dict[str, Any]]:
        ids = set(next((r["Ids"] for r in cell.get("Relationships", []) if r["Type"] == "CHILD"), []))
        return [b for b in self.blocks if b["Id"] in ids]

    def key_value(self, key: str, value: str, selected: bool | None = None) -> dict[str, Any]:
        top = self.top
        key_words = self.words(key, 0.1, top)
        value_children = self.words(value, 0.4, top) if value else []
        if selected is not None:
            value_children.append(
                self._add({"BlockType": "SELECTION_ELEMENT", "Id": _id("sel"), "SelectionStatus": "SELECTED" if selected else "NOT_SELECTED", "Geometry": geometry(0.4, top, 0.01, 0.01)}, child_of_page=False)
            )
        value_block = self._add(
            {
                "BlockType": "KEY_VALUE_SET",
                "Id": _id("value"),
                "EntityTypes": ["VALUE"],
                "Geometry": geometry(0.4, top, 0.3, 0.012),
                "Relationships": [{"Type": "CHILD", "Ids": [w["Id"] for w in value_children]}] if value_children else [],
            },
            child_of_page=False,
        )
        key_block = self._add(
            {
                "BlockType": "KEY_VALUE_SET",
                "Id": _id("key"),
                "EntityTypes": ["KEY"],
                "Geometry": geometry(0.1, top, 0.25, 0.012),
                "Relationships": [{"Type": "VALUE", "Ids": [value_block["Id"]]}, {"Type": "CHILD", "Ids": [w["Id"] for w in key_words]}],
            },
            child_of_page=False,
        )
        all_words = key_words + [w for w in value_children if w["BlockType"] == "WORD"]
        self._add(
            {
                "BlockType": "LINE",
                "Id": _id("line"),
                "Text": " ".join(w["Text"] for w in all_words),
                "Geometry": geometry(0.1, top, 0.8, 0.012),
                "Relationships": [{"Type": "CHILD", "Ids": [w["Id"] for w in all_words]}],
            }
        )
        self.top = top + 0.03
        return key_block


def paginate(blocks: list[dict[str, Any]], per_response: int, *, status: str = "SUCCEEDED", pages: int, analysis: bool, warnings: list | None = None) -> list[dict[str, Any]]:
    """Split blocks into GetDocument* responses of ``per_response`` blocks linked by NextToken."""
    chunks = [blocks[i : i + per_response] for i in range(0, len(blocks), per_response)] or [[]]
    responses = []
    for n, chunk in enumerate(chunks):
        r: dict[str, Any] = {"DocumentMetadata": {"Pages": pages}, "JobStatus": status, "Blocks": chunk}
        r["AnalyzeDocumentModelVersion" if analysis else "DetectDocumentTextModelVersion"] = "1.0"
        if n + 1 < len(chunks):
            r["NextToken"] = f"token-{n + 1}"
        if warnings and n == 0:
            r["Warnings"] = warnings
        responses.append(r)
    return responses
