"""A local, offline PII detector for ``llmops local prep`` (stands in for Comprehend).

Limits, on purpose stated: it finds only patterned identifiers (e-mail addresses, phone
numbers in common North-American / international layouts, US SSN-like numbers, payment card
numbers that pass the Luhn check, IPv4 addresses) and names in two narrow shapes: a title
followed by capitalised words ("Dr. Jane Smith"), or a capitalised word from a small list of
given names followed by a capitalised surname ("Maria Garcia"). It misses names outside that
list, addresses, dates of birth, and anything in other scripts; it is a development aid, not
a compliance control. Deployed environments use Comprehend.
"""

from __future__ import annotations

import re

from lambdas.runtime.data_prep.spans import Span

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?!\w)"
    r"|(?<![\w+])\+\d{1,3}(?:[\s.-]?\d{2,4}){3,4}(?!\w)"
)
_SSN = re.compile(r"(?<!\d)(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\d)")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")
_CAP = r"[A-Z][a-z]+(?:-[A-Z][a-z]+)?"
_TITLED_NAME = re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+(?:{_CAP}\s+){{0,2}}{_CAP}\b")

# A deliberately small list: enough for tests and demos, not for coverage.
GIVEN_NAMES = frozenset(
    """Aaron Adam Adrian Ahmed Aisha Alan Albert Alex Alexander Alice Amanda Amy Ana Andrea Andrew
    Angela Anna Anne Anthony Antonio Barbara Ben Benjamin Betty Brian Carlos Carol Catherine Charles
    Chen Chris Christine Christopher Claire Daniel David Deborah Diana Donald Dorothy Edward Elena
    Elizabeth Emily Emma Eric Fatima Frank Gary George Grace Hannah Helen Henry Hiroshi Ivan Jack
    James Jane Jason Javier Jennifer Jessica John Jose Joseph Joshua Juan Julia Karen Kevin Laura
    Linda Lisa Lucas Luis Maria Mark Mary Matthew Michael Michelle Mohammed Nancy Nicole Olivia Omar
    Patricia Paul Peter Priya Rachel Rahul Richard Robert Ronald Sarah Scott Sophie Steven Susan
    Thomas Timothy Wei William Yuki""".split()
)
_GIVEN_NAME = re.compile(rf"\b({_CAP})\s+({_CAP})\b")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


LOCAL_TYPES = ("EMAIL", "PHONE", "SSN", "CREDIT_DEBIT_NUMBER", "IP_ADDRESS", "NAME")


class LocalPiiDetector:
    """Regex and name-list PII detection with Comprehend's entity type names."""

    def __init__(self, entity_types: tuple[str, ...] = ("ALL",)) -> None:
        unknown = sorted(set(entity_types) - set(LOCAL_TYPES) - {"ALL"})
        if unknown:
            raise ValueError(f"the local detector cannot find {unknown}; it knows: ALL, {', '.join(LOCAL_TYPES)}")
        self.entity_types = frozenset(entity_types)

    def _wanted(self, t: str) -> bool:
        return "ALL" in self.entity_types or t in self.entity_types

    def detect(self, text: str, language: str | None = None) -> list[Span]:
        spans: list[Span] = []

        def add(t: str, m: re.Match[str]) -> None:
            if self._wanted(t):
                spans.append(Span(m.start(), m.end(), t, 0.9))

        for m in _EMAIL.finditer(text):
            add("EMAIL", m)
        for m in _SSN.finditer(text):
            add("SSN", m)
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if 13 <= len(digits) <= 19 and _luhn(digits):
                add("CREDIT_DEBIT_NUMBER", m)
        for m in _PHONE.finditer(text):
            add("PHONE", m)
        for m in _IPV4.finditer(text):
            add("IP_ADDRESS", m)
        for m in _TITLED_NAME.finditer(text):
            add("NAME", m)
        for m in _GIVEN_NAME.finditer(text):
            if m.group(1) in GIVEN_NAMES:
                add("NAME", m)
        # One entity found by two rules ("Mr. John Smith" and "John Smith") counts once.
        merged: list[Span] = []
        for span in sorted(spans, key=lambda s: (s.type, s.start, s.end)):
            last = merged[-1] if merged else None
            if last is not None and last.type == span.type and span.start < last.end:
                merged[-1] = Span(last.start, max(last.end, span.end), span.type, last.score)
            else:
                merged.append(span)
        return sorted(merged)
