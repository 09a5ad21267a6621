"""``llmops local prep PATH``: the data-prep workflow's steps 2-4 on this machine, no AWS account.

Text (.txt, .md) and PDF files are read locally: pypdf stands in for Textract (plain text in
content order; no tables, layout or form fields, no OCR of scanned pages). PII is found by the
local regex + name-list detector (``lambdas.runtime.data_prep.local_pii``; its limits are in its
docstring) and masked by the same span-merging redaction the Lambdas use, then the default
custom step runs and a curated document is written per file, in the format ``llmops local
ingest`` reads. A file that cannot be prepared gets ``quarantine/<name>.reason.json`` in the
output folder; the others keep going.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llmops.cli.local_files import document_files, state_home

SUPPORTED = (".txt", ".md", ".markdown", ".pdf")
MB = 1024 * 1024
# pypdf reads the whole file into memory; past this a laptop run is better done in the cloud.
DEFAULT_MAX_MB = 100
NOTICE = (
    "local prep: pypdf stands in for Amazon Textract (text only: no tables, layout, forms or OCR); "
    "PII found by the local regex/name-list detector, not Amazon Comprehend (patterned identifiers "
    "and a small list of given names only)"
)


def default_out() -> Path:
    return state_home() / "curated"


def register(registry: dict) -> None:
    prep = registry["local"].add_parser(
        "prep", help="redact and curate text/PDF files locally (data-prep steps 2-4) for `llmops local ingest`"
    )
    prep.add_argument("path", help="a file or a folder (walked recursively, hidden entries skipped)")
    prep.add_argument("--out", default=None, help="output folder for *.curated.json (default: $LLMOPS_HOME/curated or .llmops/curated)")
    prep.add_argument("--mask", default="[{type}]", help="replacement for each PII span; {type} becomes the entity type (default [{type}])")
    prep.add_argument(
        "--entity-types", default="ALL",
        help="comma-separated PII types to redact: EMAIL,PHONE,SSN,CREDIT_DEBIT_NUMBER,IP_ADDRESS,NAME or ALL (default ALL)",
    )
    prep.add_argument(
        "--max-mb", type=float, default=DEFAULT_MAX_MB,
        help=f"largest file to prepare, in MB; text files also stop at the cloud limit of 20 MB (default {DEFAULT_MAX_MB})",
    )
    prep.set_defaults(func=run)




def prepare_file(
    path: Path, key: str, *, mask: str, entity_types: tuple[str, ...], max_bytes: int = DEFAULT_MAX_MB * MB
) -> dict:
    """One file -> a curated document dict (raises a ``DataPrepError`` for bad input).

    Refused like the cloud path refuses them: empty files, files over ``max_bytes`` (and text
    over the cloud's 20 MB), and files with no text left after cleaning (a 0-page document).
    """
    from lambdas.runtime.data_prep.curated import build_curated
    from lambdas.runtime.data_prep.documents import TEXT_TYPES, document_id_for, pdf_pages, text_pages
    from lambdas.runtime.data_prep.enrich import enrich_pages
    from lambdas.runtime.data_prep.errors import CorruptDocument, DocumentTooLarge, UnsupportedDocument
    from lambdas.runtime.data_prep.local_pii import LocalPiiDetector
    from lambdas.runtime.data_prep.textract import Page
    from lambdas.runtime.data_prep.workflow import default_custom_step

    suffix = path.suffix.lower()
    size = path.stat().st_size
    if size == 0:
        raise CorruptDocument(f"{key} is empty (0 bytes)")
    limit = min(max_bytes, TEXT_TYPES.get(suffix, max_bytes))
    if size > limit:
        raise DocumentTooLarge(f"{key} is {size} bytes; the limit for {suffix or 'this file'} here is {limit} bytes (--max-mb)")
    data = path.read_bytes()
    if suffix == ".pdf":
        if not data.startswith(b"%PDF-"):
            raise CorruptDocument(f"{key}: content does not match its .pdf extension (no PDF signature)")
        raw_pages, extractor = pdf_pages(data, key), "pypdf"
    elif suffix in SUPPORTED:
        if b"\x00" in data:
            raise CorruptDocument(f"{key}: contains NUL bytes; text files must be UTF-8 text")
        try:
            raw_pages, extractor = text_pages(data.decode("utf-8")), "text"
        except UnicodeDecodeError as exc:
            raise CorruptDocument(f"{key}: not valid UTF-8 at byte {exc.start}") from None
    else:
        raise UnsupportedDocument(f"{key}: file type {suffix or '(none)'!r} is not supported locally; allowed: {', '.join(SUPPORTED)}")
    enriched = enrich_pages([Page(n, t) for n, t in raw_pages], detector=LocalPiiDetector(entity_types), mask=mask)
    cleaned = default_custom_step([{"page": p.page, "text": p.text} for p in enriched.pages])
    if not cleaned:
        raise CorruptDocument(f"{key}: no text to curate (only whitespace, or a PDF without a text layer)")
    enriched.pages = [Page(p["page"], p["text"]) for p in cleaned]
    return build_curated(
        document_id=document_id_for(key),
        # No bucket: the key is the file's own path, so citations point at the file on this machine.
        source={"bucket": None, "key": str(path.resolve()), "version_id": None},
        enriched=enriched,
        extractor=extractor,
        custom_step="default-normalize",
    )


def run(args: argparse.Namespace) -> int:
    from lambdas.runtime.data_prep.curated import SUFFIX
    from lambdas.runtime.data_prep.errors import DataPrepError

    root = Path(args.path).expanduser()
    if not root.exists():
        print(f"error: {root} does not exist", file=sys.stderr)
        return 2
    if "{type}" not in args.mask and not args.mask.strip():
        print("error: --mask must not be empty", file=sys.stderr)
        return 2
    entity_types = tuple(t.strip().upper() for t in args.entity_types.split(",") if t.strip()) or ("ALL",)
    from lambdas.runtime.data_prep.local_pii import LocalPiiDetector

    try:
        LocalPiiDetector(entity_types)
    except ValueError as exc:
        print(f"error: --entity-types: {exc}", file=sys.stderr)
        return 2
    if not args.max_mb > 0:
        print(f"error: --max-mb must be a positive number of megabytes, got {args.max_mb}", file=sys.stderr)
        return 2
    max_bytes = int(args.max_mb * MB)
    out = Path(args.out).expanduser() if args.out else default_out()
    out.mkdir(parents=True, exist_ok=True)
    print(NOTICE, file=sys.stderr)
    base = root.parent if root.is_file() else root
    ok = failed = 0
    for path in document_files(root):
        key = path.relative_to(base).as_posix()
        try:
            doc = prepare_file(path, key, mask=args.mask, entity_types=entity_types, max_bytes=max_bytes)
        except (DataPrepError, OSError) as exc:
            failed += 1
            reason = {"schema": "llmops.quarantine-reason/v1", "error": type(exc).__name__, "reason": str(exc), "source": {"path": str(path)}}
            qpath = out / "quarantine" / (key + ".reason.json")
            qpath.parent.mkdir(parents=True, exist_ok=True)
            qpath.write_text(json.dumps(reason, indent=2, ensure_ascii=False), encoding="utf-8")
            print(f"quarantined {key}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        target = out / f"{doc['document_id']}{SUFFIX}"
        target.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        counts = doc["lineage"]["redaction"]["entity_counts"]
        summary = ", ".join(f"{k}={v}" for k, v in counts.items()) or "no PII found"
        print(f"curated {key} -> {target} ({len(doc['pages'])} page(s); redacted: {summary})")
        ok += 1
    print(f"{ok} curated, {failed} quarantined; output in {out}")
    return 1 if failed else 0
