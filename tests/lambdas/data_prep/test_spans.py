"""Property tests of the byte-limit splitter, offset merging and redaction (any Unicode text)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.runtime.data_prep.spans import (
    MIN_BYTE_LIMIT,
    Span,
    clean_text,
    merge_piece_spans,
    pii_needles,
    redact,
    split_by_bytes,
    union_spans,
)

# Surrogates cannot be encoded to UTF-8 at all; clean_text() handles them (tested below).
unicode_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=400)


@settings(max_examples=400, deadline=None)
@given(text=unicode_text, limit=st.integers(min_value=MIN_BYTE_LIMIT, max_value=600))
def test_pieces_fit_the_limit_and_rebuild_the_text(text: str, limit: int) -> None:
    pieces = split_by_bytes(text, limit)
    assert "".join(p.text for p in pieces) == text
    pos = 0
    for piece in pieces:
        assert piece.text, "no empty pieces"
        assert len(piece.text.encode("utf-8")) <= limit
        assert piece.start == pos and text[piece.start : piece.end] == piece.text
        pos = piece.end
    assert pos == len(text)


@given(text=unicode_text, limit=st.integers(max_value=MIN_BYTE_LIMIT - 1))
def test_limits_below_one_code_point_are_refused(text: str, limit: int) -> None:
    with pytest.raises(ValueError, match="max_bytes must be at least 4"):
        split_by_bytes(text, limit)


def test_lone_surrogates_are_refused_then_cleaned() -> None:
    with pytest.raises(ValueError, match="surrogates"):
        split_by_bytes("a\ud800b", 10)
    assert split_by_bytes(clean_text("a\ud800b"), 10)[0].text == "a?b"


def test_pieces_prefer_paragraph_then_word_breaks() -> None:
    text = "first paragraph here.\n\nsecond one that is longer"
    pieces = split_by_bytes(text, 30)
    assert pieces[0].text == "first paragraph here.\n\n"
    assert all(p.text.endswith(" ") or p is pieces[-1] or p.text.endswith("\n") for p in pieces)


@st.composite
def text_with_piece_spans(draw):
    """A text, a limit, and spans found inside each piece (as Comprehend would report them)."""
    text = draw(unicode_text.filter(bool))
    limit = draw(st.integers(min_value=MIN_BYTE_LIMIT, max_value=200))
    per_piece = []
    for piece in split_by_bytes(text, limit):
        spans = []
        for _ in range(draw(st.integers(0, 3))):
            a = draw(st.integers(0, len(piece.text)))
            b = draw(st.integers(a, len(piece.text)))
            spans.append(Span(a, b, draw(st.sampled_from(["NAME", "EMAIL", "SSN"]))))
        per_piece.append((piece, spans))
    return text, per_piece


@settings(max_examples=300, deadline=None)
@given(data=text_with_piece_spans())
def test_merged_offsets_point_at_the_same_characters(data) -> None:
    text, per_piece = data
    merged = merge_piece_spans(per_piece)
    expected = sorted(
        (piece.text[s.start : s.end], s.type) for piece, spans in per_piece for s in spans
    )
    assert sorted((text[s.start : s.end], s.type) for s in merged) == expected
    assert all(0 <= s.start <= s.end <= len(text) for s in merged)


def test_span_outside_its_piece_is_an_error() -> None:
    (piece,) = split_by_bytes("abc", 10)
    with pytest.raises(ValueError, match="outside its piece"):
        merge_piece_spans([(piece, [Span(1, 9, "NAME")])])


@st.composite
def text_with_spans(draw):
    text = draw(unicode_text)
    spans = []
    for _ in range(draw(st.integers(0, 6))):
        a = draw(st.integers(0, len(text)))
        b = draw(st.integers(a, len(text)))
        spans.append(Span(a, b, draw(st.sampled_from(["NAME", "EMAIL", "PHONE"]))))
    return text, spans


@settings(max_examples=400, deadline=None)
@given(data=text_with_spans())
def test_union_covers_exactly_the_union_of_positions(data) -> None:
    text, spans = data
    merged = union_spans(spans)
    covered = {i for s in spans for i in range(s.start, s.end)}
    assert {i for s in merged for i in range(s.start, s.end)} == covered
    assert all(a.end < b.start for a, b in zip(merged, merged[1:])), "merged spans neither overlap nor touch"


@settings(max_examples=400, deadline=None)
@given(data=text_with_spans(), mask=st.sampled_from(["[{type}]", "***", "<redacted>"]))
def test_redaction_leaves_no_detected_span_visible(data, mask: str) -> None:
    """Every occurrence of detected PII text (3+ chars) lies inside a masked region."""
    text, spans = data
    result = redact(text, spans, mask)
    covered = {i for s in result.spans for i in range(s.start, s.end)}
    # Each detected position is masked ...
    assert all(i in covered for s in spans for i in range(s.start, s.end))
    # ... and so is every other whole-word occurrence of each detected string (an oracle in re:
    # \w is str.isalnum() plus '_'), overlapping ones included (the lookahead finds each start).
    for needle in pii_needles(text, spans):
        before = r"(?<!\w)" if re.match(r"\w", needle[0]) else ""
        after = r"(?!\w)" if re.match(r"\w", needle[-1]) else ""
        for m in re.finditer(f"(?={before}({re.escape(needle)}){after})", text):
            assert all(i in covered for i in range(m.start(1), m.end(1)))
    # The output is the text with each merged span replaced by its mask, nothing else changed.
    rebuilt, pos = [], 0
    for s in result.spans:
        rebuilt += [text[pos : s.start], mask.replace("{type}", s.type)]
        pos = s.end
    assert "".join(rebuilt) + text[pos:] == result.text


def test_redaction_masks_repeats_and_counts_detections() -> None:
    text = "Call Jane Doe at 555-0100. Jane Doe will answer."
    result = redact(text, [Span(5, 13, "NAME"), Span(17, 25, "PHONE")], "[{type}]")
    assert result.text == "Call [NAME] at [PHONE]. [NAME] will answer."
    assert result.entity_counts == {"NAME": 1, "PHONE": 1}


def test_overlapping_types_join_in_one_mask() -> None:
    result = redact("mail jdoe@example.com now", [Span(5, 21, "EMAIL"), Span(5, 9, "USERNAME")], "[{type}]")
    assert result.text == "mail [EMAIL|USERNAME] now"


# --- whole-word repeats (issue 10: "Ann" turned "Annual" into "[NAME]ual") ---------------------------


def test_repeats_are_masked_only_as_whole_words() -> None:
    text = "Ann wrote the Annual report. Thanks, Ann! JoAnn and Ann_1 stay; (Ann) goes."
    result = redact(text, [Span(0, 3, "NAME")], "[{type}]")
    assert result.text == "[NAME] wrote the Annual report. Thanks, [NAME]! JoAnn and Ann_1 stay; ([NAME]) goes."


def test_a_detected_span_is_masked_exactly_even_inside_a_word() -> None:
    # Comprehend's own span is trusted as given; only its repeats need word boundaries.
    assert redact("xxSecretyy Secret", [Span(2, 8, "PASSWORD")], "#").text == "xx#yy #"


def test_needles_with_punctuation_edges_match_next_to_words() -> None:
    text = "call (555) 123-4567x or (555) 123-4567"
    spans = [Span(text.rindex("("), len(text), "PHONE")]
    # The needle ends in a digit: "4567x" continues the word, so that repeat stays.
    assert redact(text, spans, "[P]").text == "call (555) 123-4567x or [P]"


def test_overlapping_needles_are_all_masked() -> None:
    text = "Ann Smith Jones met Ann Smith and Smith Jones"
    spans = [Span(20, 29, "NAME"), Span(34, 45, "NAME")]
    assert redact(text, spans, "*").text == "* met * and *"


def test_many_unique_needles_mask_every_repeat() -> None:
    emails = [f"user{i}@example.com" for i in range(2000)]
    text = " ".join(emails) + "\n" + " / ".join(reversed(emails))
    spans, pos = [], 0
    for e in emails:
        spans.append(Span(pos, pos + len(e), "EMAIL"))
        pos += len(e) + 1
    result = redact(text, spans, "[E]")
    assert "@" not in result.text
    assert result.entity_counts == {"EMAIL": 2000}


def test_leak_check_fails_on_a_whole_word_survivor_only() -> None:
    from lambdas.runtime.data_prep.enrich import PiiLeak, assert_no_leak

    assert_no_leak(["[NAME] filed the Annual report"], {"Ann": "NAME"}, "[{type}]")
    with pytest.raises(PiiLeak, match="NAME survived"):
        assert_no_leak(["[NAME] met Ann again"], {"Ann": "NAME"}, "[{type}]")
