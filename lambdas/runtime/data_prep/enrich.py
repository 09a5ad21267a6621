"""Step 2 of the workflow for a whole document: PII redaction, language, entities, key phrases.

The same code serves Comprehend in Lambda and the local detector in ``llmops local prep``:
only the ``PiiDetector`` differs. Entities and key phrases are taken from the *redacted*
text, so PII cannot come back through the metadata.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lambdas.runtime.data_prep.errors import UnsupportedLanguage
from lambdas.runtime.data_prep.spans import NeedleMatcher, Span, clean_text, pii_needles, redact
from lambdas.runtime.data_prep.textract import Page

PAGE_SEPARATOR = "\n\n"


class PiiDetector(Protocol):
    def detect(self, text: str, language: str) -> list[Span]: ...


@dataclass
class EnrichedDocument:
    pages: list[Page]  # redacted
    language: str | None
    entity_counts: dict[str, int]
    mask: str
    entities: list[dict[str, Any]] = field(default_factory=list)
    key_phrases: list[str] = field(default_factory=list)
    classification: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return PAGE_SEPARATOR.join(p.text for p in self.pages)


class PiiLeak(AssertionError):
    """Detected PII text is still present after redaction (a bug: never publish then)."""


def _page_spans(spans: Sequence[Span], starts: Sequence[int], lengths: Sequence[int]) -> list[list[Span]]:
    """Clip whole-document spans to each page, in page-relative offsets."""
    out: list[list[Span]] = [[] for _ in starts]
    for span in spans:
        for i, (start, length) in enumerate(zip(starts, lengths)):
            a, b = max(span.start, start), min(span.end, start + length)
            if a < b:
                out[i].append(Span(a - start, b - start, span.type, span.score))
    return out


def redact_pages(
    pages: Sequence[Page], spans: Sequence[Span], *, mask: str, whole: str | None = None
) -> tuple[list[Page], dict[str, int]]:
    """Redact pages given spans found in their ``PAGE_SEPARATOR`` join; verify nothing leaks."""
    texts = [p.text for p in pages]
    whole = PAGE_SEPARATOR.join(texts) if whole is None else whole
    starts, pos = [], 0
    for t in texts:
        starts.append(pos)
        pos += len(t) + len(PAGE_SEPARATOR)
    matcher = NeedleMatcher(pii_needles(whole, spans))
    counts: dict[str, int] = {}
    for span in spans:
        if span.end > span.start:
            counts[span.type] = counts.get(span.type, 0) + 1
    redacted = []
    for page, page_spans in zip(pages, _page_spans(spans, starts, [len(t) for t in texts])):
        result = redact(page.text, page_spans, mask, matcher)
        redacted.append(Page(page.page, result.text))
    assert_no_leak([p.text for p in redacted], matcher, mask)
    return redacted, counts


def assert_no_leak(texts: Sequence[str], needles: dict[str, str] | NeedleMatcher, mask: str) -> None:
    """Raise ``PiiLeak`` if any detected PII text survives as a word outside a mask."""
    matcher = needles if isinstance(needles, NeedleMatcher) else NeedleMatcher(needles)
    if not matcher.needles:
        return
    # One regex for every mask (merged spans carry joined types): masks become NUL, then one pass.
    literal = sorted({mask.replace("{type}", t) for t in set(matcher.needles.values())} | {mask}, key=len, reverse=True)
    patterns = [re.escape(m) for m in literal]
    if "{type}" in mask:
        prefix, _, suffix = mask.partition("{type}")
        if prefix or suffix:
            patterns.append(re.escape(prefix) + r"[A-Z_|]+" + re.escape(suffix))
    masks = re.compile("|".join(patterns))
    for text in texts:
        leaked = matcher.find(masks.sub("\x00", text))
        if leaked:
            raise PiiLeak(f"detected PII of type {leaked[0].type} survived redaction")


def enrich_pages(
    pages: Sequence[Page],
    *,
    detector: PiiDetector,
    mask: str,
    analyzer: Any | None = None,
    language: str | None = None,
    pii_languages: Sequence[str] | None = None,
    entity_languages: Sequence[str] | None = None,
) -> EnrichedDocument:
    """Redact PII in ``pages`` and gather language, entities, key phrases, classification.

    ``analyzer`` is a ``ComprehendAnalyzer`` (None locally: no language, entities or phrases).
    A language PII detection does not support raises ``UnsupportedLanguage``: publishing the
    text unredacted is not an option.
    """
    pages = [Page(p.page, clean_text(p.text)) for p in pages]
    whole = PAGE_SEPARATOR.join(p.text for p in pages)
    if analyzer is not None and language is None:
        language = analyzer.dominant_language(whole)
    pii_language = language or "en"
    if pii_languages is not None and pii_language not in pii_languages:
        raise UnsupportedLanguage(
            f"dominant language {pii_language!r} is not supported by PII detection (supported: {', '.join(pii_languages)})"
        )
    spans = detector.detect(whole, pii_language) if whole.strip() else []
    redacted, counts = redact_pages(pages, spans, mask=mask, whole=whole)
    doc = EnrichedDocument(pages=redacted, language=language, entity_counts=counts, mask=mask)
    if analyzer is not None and doc.text.strip():
        if entity_languages is None or pii_language in entity_languages:
            doc.entities = analyzer.entities(doc.text, pii_language)
            doc.key_phrases = analyzer.key_phrases(doc.text, pii_language)
        doc.classification = analyzer.classify(doc.text)
    return doc
