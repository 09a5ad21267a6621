"""Text spans: the byte-limit splitter, offset merging and redaction shared by Comprehend and
the local detector.

Comprehend reports offsets in Unicode code points (Python ``str`` indices) but limits each
request by UTF-8 *bytes*, so text is cut into pieces that fit the byte limit, never inside a
code point, and each piece's offsets are shifted back by the piece's start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# A UTF-8 code point takes at most 4 bytes: a smaller limit cannot hold every character.
MIN_BYTE_LIMIT = 4
# How far back from a hard cut the splitter looks for a natural break (characters).
_BREAK_LOOKBACK = 2000


@dataclass(frozen=True)
class TextPiece:
    """A slice of a larger text: ``text == whole[start:start + len(text)]``."""

    start: int
    text: str

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True, order=True)
class Span:
    """A detected entity in code-point offsets of the whole text, ``end`` exclusive."""

    start: int
    end: int
    type: str = field(compare=False)
    score: float = field(default=1.0, compare=False)

    def shifted(self, by: int) -> Span:
        return Span(self.start + by, self.end + by, self.type, self.score)


def clean_text(text: str) -> str:
    """Replace lone surrogates (not encodable as UTF-8) so every downstream byte count holds."""
    return text.encode("utf-8", "replace").decode("utf-8") if _has_surrogates(text) else text


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _break_point(piece: str) -> int:
    """Best end for ``piece`` (length >= 1): after a paragraph, line, sentence or word break."""
    floor = max(1, len(piece) - _BREAK_LOOKBACK)
    for sep in ("\n\n", "\n", ". ", " "):
        cut = piece.rfind(sep, floor)
        if cut != -1:
            return cut + len(sep)
    return len(piece)


def split_by_bytes(text: str, max_bytes: int) -> list[TextPiece]:
    """Cut ``text`` into pieces whose UTF-8 encoding is at most ``max_bytes`` each.

    Pieces concatenate back to ``text`` exactly, are never empty, never split a code point,
    and prefer to end at a paragraph, line, sentence or word break so an entity is rarely
    cut in two.
    """
    if max_bytes < MIN_BYTE_LIMIT:
        raise ValueError(f"max_bytes must be at least {MIN_BYTE_LIMIT} (one UTF-8 code point), got {max_bytes}")
    if _has_surrogates(text):
        raise ValueError("text contains lone surrogates that UTF-8 cannot encode; pass it through clean_text() first")
    data = text.encode("utf-8")
    pieces: list[TextPiece] = []
    char_pos = byte_pos = 0
    while byte_pos < len(data):
        cut = min(byte_pos + max_bytes, len(data))
        # Back up to the first byte of a code point (continuation bytes are 0b10xxxxxx).
        while cut < len(data) and data[cut] & 0xC0 == 0x80:
            cut -= 1
        piece = data[byte_pos:cut].decode("utf-8")
        if cut < len(data):
            piece = piece[: _break_point(piece)]
        pieces.append(TextPiece(char_pos, piece))
        char_pos += len(piece)
        byte_pos += len(piece.encode("utf-8"))
    return pieces


def merge_piece_spans(per_piece: Iterable[tuple[TextPiece, Iterable[Span]]]) -> list[Span]:
    """Shift each piece's piece-relative spans to whole-text offsets, sorted by position."""
    spans: list[Span] = []
    for piece, found in per_piece:
        for span in found:
            if not 0 <= span.start <= span.end <= len(piece.text):
                raise ValueError(
                    f"span {span.start}-{span.end} lies outside its piece of {len(piece.text)} characters"
                )
            spans.append(span.shifted(piece.start))
    return sorted(spans)


def union_spans(spans: Iterable[Span]) -> list[Span]:
    """Merge overlapping or touching spans; the merged span keeps every type, sorted and joined by '|'."""
    merged: list[Span] = []
    for span in sorted(s for s in spans if s.end > s.start):
        if merged and span.start <= merged[-1].end:
            last = merged[-1]
            types = last.type.split("|")
            if span.type not in types:
                types.append(span.type)
            merged[-1] = Span(last.start, max(last.end, span.end), "|".join(sorted(types)), max(last.score, span.score))
        else:
            merged.append(span)
    return merged


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class NeedleMatcher:
    """Whole-word occurrences of many needles in one pass (Aho-Corasick), linear in the text.

    A needle that starts (ends) with a word character matches only where the text does not
    continue the word on that side: "Ann" matches "Ann" and "Ann," but not "Annual". Matches may
    overlap; each is reported. Build it once per document and reuse it for every page.
    """

    def __init__(self, needles: Mapping[str, str]) -> None:
        self.needles = dict(needles)
        self._automaton = None
        if self.needles:
            # Imported here: only the functions that redact carry the native wheel.
            import ahocorasick

            automaton = ahocorasick.Automaton()
            for needle, kind in self.needles.items():
                if needle:
                    automaton.add_word(needle, (len(needle), kind, _is_word(needle[0]), _is_word(needle[-1])))
            automaton.make_automaton()
            self._automaton = automaton

    def find(self, text: str) -> list[Span]:
        if self._automaton is None or not text:
            return []
        found = []
        n = len(text)
        for last, (length, kind, word_start, word_end) in self._automaton.iter(text):
            start, end = last - length + 1, last + 1
            if word_start and start > 0 and _is_word(text[start - 1]):
                continue
            if word_end and end < n and _is_word(text[end]):
                continue
            found.append(Span(start, end, kind))
        return found


@dataclass(frozen=True)
class Redaction:
    text: str
    spans: list[Span]  # merged spans that were masked, in offsets of the original text
    entity_counts: dict[str, int]  # detections per type, before merging
    mask: str


def pii_needles(text: str, detected: Iterable[Span]) -> dict[str, str]:
    """The text of each detected span (stripped) mapped to its type, for masking elsewhere too.

    Needles shorter than 3 characters are left out: masking every "Al" would wreck the text.
    """
    needles: dict[str, str] = {}
    for span in detected:
        needle = text[span.start : span.end].strip()
        if len(needle) >= 3:
            needles.setdefault(needle, span.type)
    return needles


def redact(
    text: str,
    detected: Sequence[Span],
    mask: str = "[{type}]",
    needles: Mapping[str, str] | NeedleMatcher | None = None,
) -> Redaction:
    """Mask every detected span, and every whole-word repeat of every needle (detected PII text).

    The needles are why no detected PII survives: a name found once is masked wherever else it
    appears as a word, even where a piece boundary or a low score hid it, but never inside
    another word ("Ann" leaves "Annual" alone). By default they come from ``detected``; pass a
    ``NeedleMatcher`` of a whole document's ``pii_needles`` to apply them across its pages.
    One pass over the text whatever the number of needles. ``mask`` may contain ``{type}``
    (e.g. ``[NAME]``); overlapping types join with '|'.
    """
    counts: dict[str, int] = {}
    covering: list[Span] = []
    for span in detected:
        if not 0 <= span.start <= span.end <= len(text):
            raise ValueError(f"span {span.start}-{span.end} ({span.type}) lies outside the text of {len(text)} characters")
        if span.end == span.start:
            continue
        counts[span.type] = counts.get(span.type, 0) + 1
        covering.append(span)
    if needles is None:
        needles = pii_needles(text, detected)
    matcher = needles if isinstance(needles, NeedleMatcher) else NeedleMatcher(needles)
    covering.extend(matcher.find(text))
    merged = union_spans(covering)
    out: list[str] = []
    pos = 0
    for span in merged:
        out.append(text[pos : span.start])
        out.append(mask.replace("{type}", span.type))
        pos = span.end
    out.append(text[pos:])
    return Redaction("".join(out), merged, counts, mask)
