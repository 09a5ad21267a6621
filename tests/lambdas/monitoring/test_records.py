"""Record validation over generated input: valid records round-trip, anything else names the field."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lambdas.runtime.monitoring.records import RecordError, record_from_answer, validate_record

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                           max_leaves=5)


@given(prompt=st.text(), response=st.text(), contexts=st.none() | st.lists(st.text(), max_size=4),
       question=st.none() | st.text(), metadata=st.dictionaries(st.text(), json_values, max_size=3))
def test_valid_records_round_trip(prompt, response, contexts, question, metadata):
    obj = {"prompt": prompt, "response": response, "contexts": contexts, "question": question, "metadata": metadata}
    record = validate_record(obj)
    assert (record.prompt, record.response, record.question) == (prompt, response, question)
    assert record.contexts == (tuple(contexts) if contexts is not None else None)
    assert record.query == (question or prompt)


@given(obj=st.dictionaries(st.sampled_from(["prompt", "response", "contexts", "question", "metadata", "x"]), json_values))
def test_any_object_is_accepted_or_rejected_with_a_named_field(obj):
    try:
        validate_record(obj)
    except RecordError as exc:
        assert any(f"'{name}'" in str(exc) for name in ("prompt", "response", "contexts", "question", "metadata"))
    else:
        assert isinstance(obj["prompt"], str) and isinstance(obj["response"], str)


@given(value=json_values.filter(lambda v: not isinstance(v, dict)))
def test_non_objects_are_rejected(value):
    try:
        validate_record(value)
    except RecordError as exc:
        assert "expected a JSON object" in str(exc)
    else:
        raise AssertionError("accepted a non-object")


def test_record_from_a_rag_answer_is_a_valid_interaction():
    from lambdas.runtime.monitoring.metrics import cheap_record_metrics
    from lambdas.runtime.rag.query import Answer, Citation

    answer = Answer(answer="Thirty days [1].", prompt_id="rag-answer", prompt_version=2, llm_called=True, model="m",
                    citations=[Citation(n=1, source="a.md", page=1, chunk_index=0, chunk_id="c1", score=0.9, text="Thirty days."),
                               Citation(n=2, source="b.md", page=None, chunk_index=3, chunk_id="c2", score=0.4, text="Other.")],
                    prompt_tokens=120, completion_tokens=5, timings_ms={"embedding": 8.0, "retrieval": 2.5})
    obj = record_from_answer("Notice period?", answer, record_id="r-1", time="2026-12-02T12:00:00+00:00")
    record = validate_record(obj)
    assert record.contexts == ("Thirty days.", "Other.") and record.query == "Notice period?"
    values = cheap_record_metrics(record)
    assert values["prompt_tokens"] == 120 and values["response_tokens"] == 5
    assert values["top_score"] == 0.9 and values["score_gap"] == 0.5
    assert values["embedding_latency_ms"] == 8.0 and values["retrieval_latency_ms"] == 2.5
