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


def occurrences(text: str, needle: str) -> list[tuple[int, int]]:
    """Every (possibly overlapping) occurrence of ``needle`` in ``text``."""
    found = []
    if not needle:
        return found
    i = text.find(needle)
    while i != -1:
        found.append((i, i + len(needle)))
        i = text.find(needle, i + 1)
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
    needles: Mapping[str, str] | None = None,
) -> Redaction:
    """Mask every detected span, and every occurrence of every needle (detected PII text).

    The needles are why no detected PII survives: a name found once is masked wherever else it
    appears, even where a piece boundary or a low score hid it. By default they come from
    ``detected``; pass ``pii_needles`` of a whole document to apply them across its pages.
    ``mask`` may contain ``{type}`` (e.g. ``[NAME]``); overlapping types join with '|'.
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
    for needle, kind in needles.items():
        covering.extend(Span(a, b, kind) for a, b in occurrences(text, needle))
    merged = union_spans(covering)
    out: list[str] = []
    pos = 0
    for span in merged:
        out.append(text[pos : span.start])
        out.append(mask.replace("{type}", span.type))
        pos = span.end
    out.append(text[pos:])
    return Redaction("".join(out), merged, counts, mask)
