"""Request validation and retry behaviour, property-tested (no server or model needed)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.runtime.rag.llm import extractive_answer
from lambdas.runtime.rag.model import Chunk, Hit
from lambdas.runtime.rag.pgvector import PgVectorStore
from lambdas.runtime.rag.query import MAX_TOP_K, InvalidQuery, QueryRequest, parse_request
from lambdas.runtime.rag.retry import UpstreamThrottled, call_with_backoff

FIELDS = PgVectorStore.FILTERABLE_FIELDS
scalars = st.one_of(st.text(max_size=20), st.integers(), st.floats(allow_nan=False), st.booleans())
json_values = st.recursive(st.one_of(st.none(), scalars), lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


@given(st.one_of(json_values, st.dictionaries(st.sampled_from(["question", "top_k", "filters", "other"]), json_values)))
def test_any_payload_is_accepted_or_rejected_with_invalid_query(payload):
    try:
        request = parse_request(payload, filterable=FIELDS, max_question_chars=100)
    except InvalidQuery as exc:
        assert str(exc)
    else:
        assert isinstance(request, QueryRequest)
        assert 0 < len(request.question) <= 100 and 1 <= request.top_k <= MAX_TOP_K
        assert set(request.filters) <= FIELDS


def _visible(text: str) -> bool:
    import unicodedata

    return any(unicodedata.category(c) not in ("Cf", "Cc", "Zs", "Zl", "Zp") for c in text)


@given(st.text(min_size=1, max_size=100).filter(lambda q: _visible(q) and "\x00" not in q))
def test_every_reasonable_question_is_accepted(question):
    assert parse_request({"question": question}, filterable=FIELDS, max_question_chars=100).question == question.strip()


@given(st.text(min_size=1, max_size=30).filter(lambda name: name not in FIELDS), scalars)
def test_unknown_filter_fields_are_named(name, value):
    with pytest.raises(InvalidQuery) as info:
        parse_request({"question": "q", "filters": {name: value}}, filterable=FIELDS)
    assert "unknown filter field" in str(info.value) and str(name) in str(info.value)


@given(st.integers(min_value=101, max_value=5000))
def test_oversized_questions_name_the_limit(length):
    with pytest.raises(InvalidQuery, match=f"question is {length} characters; the limit is 100"):
        parse_request({"question": "a" * length}, filterable=FIELDS, max_question_chars=100)


def throttle(code="ThrottlingException"):
    return ClientError({"Error": {"Code": code, "Message": "slow down"}}, "InvokeEndpoint")


@given(st.integers(min_value=0, max_value=4))
def test_backoff_retries_throttling_then_succeeds(failures):
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) <= failures:
            raise throttle()
        return "ok"

    assert call_with_backoff(flaky, service="svc", attempts=5, sleep=sleeps.append) == "ok"
    assert len(calls) == failures + 1 and len(sleeps) == failures


def test_backoff_gives_up_and_reports():
    with pytest.raises(UpstreamThrottled, match=r"svc throttled the request \(ModelNotReadyException\) on all 4 attempts"):
        call_with_backoff(lambda: (_ for _ in ()).throw(throttle("ModelNotReadyException")), service="svc",
                          attempts=4, sleep=lambda s: None)


def test_other_errors_are_not_retried():
    calls = []

    def broken():
        calls.append(1)
        raise ClientError({"Error": {"Code": "ValidationException", "Message": "bad"}}, "Converse")

    with pytest.raises(ClientError):
        call_with_backoff(broken, service="svc", sleep=lambda s: None)
    assert len(calls) == 1


def test_extractive_answer_cites_the_best_matching_sentence():
    hits = [
        Hit(Chunk("a", "d", "Shipping takes five days. Refunds are paid within ten days.", {}), 0.8),
        Hit(Chunk("b", "d", "# Returns\nItems can be returned within 30 days of delivery.", {}), 0.7),
    ]
    answer = extractive_answer("Within how many days can items be returned?", hits, max_sentences=1)
    assert answer == "Items can be returned within 30 days of delivery. [2]"


# ---- inputs that crashed or were wrongly accepted: each a clear 400 ----

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"


@settings(deadline=None)  # no timing assertions: the CI machine is shared
@given(st.text(alphabet=st.sampled_from(ZERO_WIDTH + " \t\n\x01"), min_size=1, max_size=50))
def test_a_question_of_only_invisible_characters_is_refused(question):
    with pytest.raises(InvalidQuery, match="question (has no visible characters|must not be empty)"):
        parse_request({"question": question}, filterable=FIELDS)


@settings(deadline=None)  # no timing assertions: the CI machine is shared
@given(st.text(max_size=20), st.integers(0xD800, 0xDFFF), st.text(max_size=20))
def test_a_lone_surrogate_is_refused_before_the_tokenizer(before, surrogate, after):
    question = f"what {before}{chr(surrogate)}{after}"
    with pytest.raises(InvalidQuery, match="question is not valid Unicode: a lone surrogate at character"):
        parse_request({"question": question}, filterable=FIELDS, max_question_chars=100)


def test_a_json_body_with_an_escaped_lone_surrogate_is_refused():
    import json

    payload = json.loads('{"question": "refunds \\ud800?"}')
    with pytest.raises(InvalidQuery, match="lone surrogate at character 8"):
        parse_request(payload, filterable=FIELDS)


@settings(deadline=None)  # no timing assertions: the CI machine is shared
@given(st.integers(min_value=1025, max_value=1_000_000))
def test_oversized_filter_values_name_the_limit(length):
    with pytest.raises(InvalidQuery, match=f"filter 'source_key' is {length} characters; the limit is 1024"):
        parse_request({"question": "q", "filters": {"source_key": "k" * length}}, filterable=FIELDS)


@pytest.mark.parametrize(("field", "value", "message"), [
    # page is an integer field (store.FILTER_FIELDS): a float, even NaN, is refused by its type
    ("page", float("nan"), "filter 'page' must be an integer, got float nan"),
    ("page", float("inf"), "filter 'page' must be an integer, got float inf"),
    ("page", 2**70, "outside the 64-bit integer range"),
    ("source_key", "a\x00b", "must not contain NUL"), ("source_key", "\udc00", "lone surrogate"),
])
def test_filter_values_no_backend_can_take_are_refused(field, value, message):
    with pytest.raises(InvalidQuery, match=message):
        parse_request({"question": "q", "filters": {field: value}}, filterable=FIELDS)


@settings(deadline=None)  # no timing assertions: the CI machine is shared
@given(st.text(min_size=1, max_size=1024).filter(lambda v: "\x00" not in v))
def test_filter_values_up_to_the_limit_pass_this_check(value):
    assert parse_request({"question": "q", "filters": {"source_key": value}}, filterable=FIELDS).filters == {"source_key": value}
