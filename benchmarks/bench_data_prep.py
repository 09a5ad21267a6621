"""Data-prep hot paths, each beside a baseline measured in the same run.

1. UTF-8 byte-limit splitting (Comprehend's 100 KB requests) vs. the hand-written per-character
   byte count it replaces.
2. Textract blocks -> Markdown pages (reading order, tables, forms) vs. joining LINE text only.
3. Redaction (span merge, repeat masking, leak check) vs. PII detection alone.
4. Redaction of many unique e-mails: one Aho-Corasick pass vs. the old per-needle ``str.find``
   scan (needles x text), the old way on a smaller input in the same run; then a 20 MB document
   (Lambda's 10-minute limit is the bar).

Run: .venv/bin/python benchmarks/bench_data_prep.py   (about 40 s on 2 cores)
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lambdas.runtime.data_prep.enrich import enrich_pages  # noqa: E402
from lambdas.runtime.data_prep.local_pii import LocalPiiDetector  # noqa: E402
from lambdas.runtime.data_prep.spans import Span, pii_needles, redact, split_by_bytes, union_spans  # noqa: E402
from lambdas.runtime.data_prep.textract import Page, blocks_to_pages  # noqa: E402
from tests.lambdas.data_prep.textract_blocks import PageBuilder  # noqa: E402


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def naive_split(text: str, limit: int) -> list[str]:
    """Baseline: count each character's UTF-8 bytes (no break-point search)."""
    pieces, current, size = [], [], 0
    for ch in text:
        n = len(ch.encode("utf-8"))
        if size + n > limit:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += n
    if current:
        pieces.append("".join(current))
    return pieces


def corpus(n_words: int, seed: int = 7) -> str:
    rnd = random.Random(seed)
    words = ["data", "modèle", "pipeline", "naïve", "Zoë", "über", "東京", "résumé", "metrics", "the", "and", "😀"]
    out = []
    for i in range(n_words):
        out.append(rnd.choice(words))
        if i % 17 == 16:
            out.append(".\n\n" if i % 51 == 50 else ". ")
    return " ".join(out)


def report(name: str, ours: float, baseline: float, unit_count: float, unit: str) -> None:
    print(f"{name}: {unit_count / ours:,.0f} {unit}/s vs baseline {unit_count / baseline:,.0f} {unit}/s  ratio {baseline / ours:.2f}x")


def main() -> None:
    text = corpus(400_000)
    mb = len(text.encode("utf-8")) / 1e6
    ours = best_of(lambda: split_by_bytes(text, 100_000))
    base = best_of(lambda: naive_split(text, 100_000))
    report(f"split {mb:.1f} MB at 100 KB", ours, base, mb, "MB")

    pages = []
    for n in range(1, 201):
        p = PageBuilder(n)
        p.layout("LAYOUT_SECTION_HEADER", [f"Section {n}"])
        for i in range(12):
            p.layout("LAYOUT_TEXT", [f"Paragraph {i} line one of page {n}", "and its second line."])
        p.table([["Item", "Qty", "Price"], ["A", "1", "2.00"], ["B", "3", "4.50"]])
        pages.extend(p.blocks)
    ours = best_of(lambda: blocks_to_pages(pages))
    base = best_of(lambda: ["\n".join(b["Text"] for b in pages if b["BlockType"] == "LINE")])
    report(f"textract {len(pages):,} blocks / 200 pages", ours, base, 200, "pages")

    pii_text = ("Contact Dr. Jane Smith at jane.smith@example.com or (555) 123-4567. " + corpus(60)) * 300
    doc = [Page(i + 1, pii_text[i * 5000 : (i + 1) * 5000]) for i in range(len(pii_text) // 5000)]
    detector = LocalPiiDetector()
    ours = best_of(lambda: enrich_pages(doc, detector=detector, mask="[{type}]"))
    base = best_of(lambda: detector.detect("\n\n".join(p.text for p in doc), "en"))
    report(f"redact {len(doc)} pages (local detector)", ours, base, len(doc), "pages")

    bench_many_needles()


def quadratic_redact(text: str, detected: list[Span], mask: str) -> str:
    """Baseline: the redaction this replaced, one full ``str.find`` scan of the text per needle."""
    covering = list(detected)
    for needle, kind in pii_needles(text, detected).items():
        i = text.find(needle)
        while i != -1:
            covering.append(Span(i, i + len(needle), kind))
            i = text.find(needle, i + 1)
    out, pos = [], 0
    for span in union_spans(covering):
        out += [text[pos : span.start], mask.replace("{type}", span.type)]
        pos = span.end
    return "".join(out) + text[pos:]


def unique_emails(target_bytes: int) -> tuple[str, list[Span]]:
    """Text of ~``target_bytes`` where every 6th word is a distinct e-mail address (detected)."""
    parts, spans, pos, i = [], [], 0, 0
    while pos < target_bytes:
        email = f"person{i}.name@example{i % 97}.com"
        chunk = f"Ticket {i} from {email} was closed. "
        start = pos + chunk.index(email)
        spans.append(Span(start, start + len(email), "EMAIL"))
        parts.append(chunk)
        pos += len(chunk)
        i += 1
    return "".join(parts), spans


def bench_many_needles() -> None:
    small_text, small_spans = unique_emails(250_000)
    t = time.perf_counter()
    old = quadratic_redact(small_text, small_spans, "[{type}]")
    base = time.perf_counter() - t
    ours = best_of(lambda: redact(small_text, small_spans, "[{type}]"), repeat=3)
    assert redact(small_text, small_spans, "[{type}]").text == old, "both ways must redact alike"
    mb = len(small_text) / 1e6
    report(f"redact {mb:.2f} MB, {len(small_spans):,} unique e-mails", ours, base, mb, "MB")
    big_text, big_spans = unique_emails(20_000_000)
    t = time.perf_counter()
    enrich_pages([Page(1, big_text)], detector=_Given(big_spans), mask="[{type}]")
    big = time.perf_counter() - t
    # The old way grows with needles x text: scale the small run by both factors.
    factor = (len(big_spans) / len(small_spans)) * (len(big_text) / len(small_text))
    print(f"redact 20 MB, {len(big_spans):,} unique e-mails (whole enrich step, leak check included): {big:.1f} s; "
          f"old way extrapolated {base * factor / 60:,.0f} min")


class _Given:
    """A detector that returns known spans: the benchmark measures redaction, not detection."""

    def __init__(self, spans: list[Span]) -> None:
        self.spans = spans

    def detect(self, text: str, language: str) -> list[Span]:
        return self.spans


if __name__ == "__main__":
    main()
