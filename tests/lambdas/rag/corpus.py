"""A small corpus with known answers, in the formats ingestion accepts."""

from __future__ import annotations

import io
import json

POLICY_MD = """# Refund policy

Customers can request a refund within 30 days of purchase. Refunds are paid to the original card
within five business days.

## Shipping

Standard shipping takes three to five business days. Express shipping arrives the next day.
"""

WARRANTY_HTML = """<html><head><title>Warranty</title><style>p {color: red}</style>
<script>var tracking = "do not index";</script></head>
<body><h1>Warranty</h1><p>All laptops carry a two-year warranty covering hardware faults.</p>
<p>Batteries are covered for one year.</p></body></html>"""

ONBOARDING_TXT = """New employees receive a laptop on their first day. The IT desk sets up email and VPN access.
Badge photos are taken at reception between 9 and 11 in the morning."""


def pdf_bytes(pages: list[str]) -> bytes:
    """A minimal valid PDF with one text line per page (Helvetica), built by hand."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font_id = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def textract_json(pages: dict[int, list[str]]) -> bytes:
    blocks = [{"BlockType": "PAGE", "Page": p, "Id": f"p{p}"} for p in pages]
    for page, lines in pages.items():
        blocks += [{"BlockType": "LINE", "Page": page, "Text": line, "Id": f"l{page}-{i}"} for i, line in enumerate(lines)]
        blocks += [{"BlockType": "WORD", "Page": page, "Text": w, "Id": f"w{page}-{w}"} for w in lines[0].split()[:2]]
    return json.dumps({"DocumentMetadata": {"Pages": len(pages)}, "Blocks": blocks}).encode()


def curated_json(document_id: str, pages: list[str], *, source_key: str, language: str = "en") -> bytes:
    return json.dumps({
        "schema": "llmops.curated-document/v1",
        "document_id": document_id,
        "source": {"bucket": "raw-bucket", "key": source_key, "version_id": "v1"},
        "pages": [{"page": i, "text": text} for i, text in enumerate(pages, 1)],
        "metadata": {"language": language, "entities": [], "key_phrases": [], "classification": "contract"},
        "lineage": {"textract_job_id": None, "extractor": "pypdf", "redaction": {"entity_counts": {}, "mask": "[REDACTED]"},
                    "custom_step": None, "prepared_at": "2026-11-25T12:00:00Z"},
    }).encode()
