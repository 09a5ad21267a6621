"""``POST /feedback``: validation (property-tested), the UpdateItem on moto DynamoDB, the handler's answers and metric."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from lambdas.rag_query import handler as query_handler
from lambdas.runtime.rag.feedback import (
    FEEDBACK_FIELDS, MAX_COMMENT_CHARS, RATINGS, Feedback, InvalidFeedback, UnknownInteraction, parse_feedback,
    record_feedback,
)
from tests.lambdas.rag.events import LambdaContext, api_event

TABLE = "interactions"
ID = "0b9c7f3e-5d1a-4c8e-9f2b-6a7d8e9f0a1b"
scalars = st.one_of(st.none(), st.text(max_size=30), st.integers(), st.floats(allow_nan=False), st.booleans())
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)


@settings(max_examples=300)
@given(st.one_of(json_values, st.dictionaries(
    st.sampled_from(["interaction_id", "rating", "comment", "other"]),
    st.one_of(json_values, st.sampled_from(["up", "down", ID]), st.text(min_size=1990, max_size=2010)))))
def test_any_payload_is_accepted_or_rejected_with_a_named_reason(payload):
    try:
        feedback = parse_feedback(payload)
    except InvalidFeedback as exc:
        assert str(exc)
        return
    assert set(payload) <= FEEDBACK_FIELDS
    assert feedback.rating in RATINGS and feedback.rating == payload["rating"]
    assert feedback.interaction_id == payload["interaction_id"]
    assert len(feedback.comment) <= MAX_COMMENT_CHARS
    feedback.comment.encode("utf-8")  # storable


@given(st.sampled_from(RATINGS), st.text(max_size=MAX_COMMENT_CHARS).filter(lambda c: "\x00" not in c),
       st.from_regex(r"\A[A-Za-z0-9._:-]{1,200}\Z"))
def test_every_wellformed_feedback_is_accepted(rating, comment, interaction_id):
    feedback = parse_feedback({"interaction_id": interaction_id, "rating": rating, "comment": comment})
    assert feedback == Feedback(interaction_id, rating, comment.strip())


@given(st.integers(min_value=MAX_COMMENT_CHARS + 1, max_value=MAX_COMMENT_CHARS + 500))
def test_an_oversized_comment_names_the_limit(length):
    with pytest.raises(InvalidFeedback, match=f"comment is {length} characters; the limit is {MAX_COMMENT_CHARS}"):
        parse_feedback({"interaction_id": ID, "rating": "down", "comment": "x" * length})


@pytest.mark.parametrize("payload, message", [
    ([], "must be a JSON object"),
    ({"rating": "up"}, "interaction_id is required"),
    ({"interaction_id": "a b", "rating": "up"}, "interaction_id must be 1-200 characters"),
    ({"interaction_id": ID, "rating": "meh"}, "rating must be one of up, down, got 'meh'"),
    ({"interaction_id": ID, "rating": True}, "rating must be one of up, down"),
    ({"interaction_id": ID, "rating": "up", "comment": 3}, "comment must be a string, got int"),
    ({"interaction_id": ID, "rating": "up", "comment": "\ud800"}, "lone surrogate at character 0"),
    ({"interaction_id": ID, "rating": "up", "stars": 5}, "unknown request field(s): stars"),
])
def test_malformed_feedback_names_the_problem(payload, message):
    with pytest.raises(InvalidFeedback, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_feedback(payload)


@pytest.fixture
def table(aws_env, monkeypatch):
    monkeypatch.setenv("INTERACTIONS_TABLE", TABLE)
    query_handler.dynamodb.cache_clear()
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": "interaction_id", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "interaction_id", "AttributeType": "S"}])
        client.put_item(TableName=TABLE, Item={
            "interaction_id": {"S": ID}, "prompt_id": {"S": "rag-answer"}, "prompt_version": {"N": "3"},
            "recorded_at": {"S": "2026-12-02T10:00:00Z"}, "record": {"S": json.dumps({"question": "q"})}})
        yield client
    query_handler.dynamodb.cache_clear()


def test_feedback_is_stored_on_the_interaction_and_replaces_an_earlier_one(table):
    at = datetime(2026, 12, 2, 11, 0, 0, tzinfo=timezone.utc)
    record_feedback(table, TABLE, Feedback(ID, "up"), now=at)
    stored = record_feedback(table, TABLE, Feedback(ID, "down", "wrong refund period"), now=at)
    item = table.get_item(TableName=TABLE, Key={"interaction_id": {"S": ID}})["Item"]
    assert stored == {"rating": "down", "comment": "wrong refund period", "at": "2026-12-02T11:00:00Z"}
    assert item["feedback"] == {"M": {"rating": {"S": "down"}, "comment": {"S": "wrong refund period"},
                                      "at": {"S": "2026-12-02T11:00:00Z"}}}
    assert item["record"]["S"] == json.dumps({"question": "q"}) and item["prompt_version"] == {"N": "3"}  # untouched


def test_feedback_on_an_unknown_interaction_creates_nothing(table):
    with pytest.raises(UnknownInteraction, match="no interaction 'never-answered'"):
        record_feedback(table, TABLE, Feedback("never-answered", "down"))
    assert "Item" not in table.get_item(TableName=TABLE, Key={"interaction_id": {"S": "never-answered"}})


def call(body=None, *, raw=None) -> tuple[int, dict]:
    response = query_handler.handler(api_event(body, raw=raw, path="/feedback"), LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def emf_records(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"_aws"' in line]


def test_handler_stores_feedback_and_counts_it_per_rating_and_prompt_version(table, capsys):
    status, body = call({"interaction_id": ID, "rating": "down", "comment": "  cites the wrong policy "})
    assert status == 200, body
    assert body["interaction_id"] == ID and body["feedback"]["rating"] == "down"
    assert body["feedback"]["comment"] == "cites the wrong policy"
    item = table.get_item(TableName=TABLE, Key={"interaction_id": {"S": ID}})["Item"]
    assert item["feedback"]["M"]["rating"] == {"S": "down"}
    [emf] = emf_records(capsys.readouterr().out)
    assert emf["Feedback"] in (1.0, [1.0]) and emf["Rating"] == "down"
    assert emf["PromptId"] == "rag-answer" and emf["PromptVersion"] == "3"
    [dimensions] = emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert {"PromptId", "PromptVersion", "Rating"} <= set(dimensions)


def test_handler_answers_an_unknown_id_with_404_naming_it(table):
    status, body = call({"interaction_id": "q-404", "rating": "up"})
    assert status == 404
    assert body["error"] == "UnknownInteraction" and body["interaction_id"] == "q-404"
    assert "q-404" in body["message"] and body["request_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


@pytest.mark.parametrize("body, raw, message", [
    (None, "{not json", "the body must be valid JSON"),
    ({"interaction_id": ID, "rating": "sideways"}, None, "rating must be one of up, down"),
    ({"interaction_id": ID, "rating": "up", "comment": "x" * 2001}, None, "comment is 2001 characters"),
])
def test_handler_answers_bad_requests_with_400_naming_the_problem(table, body, raw, message):
    status, answer = call(body, raw=raw)
    assert status == 400 and answer["error"] == "InvalidRequest" and message in answer["message"]


def test_handler_answers_a_failing_table_with_a_structured_503(table):
    from botocore.stub import Stubber

    stub = Stubber(query_handler.dynamodb())  # the handler's own client
    stub.add_client_error("update_item", service_error_code="ProvisionedThroughputExceededException", http_status_code=400)
    with stub:
        status, body = call({"interaction_id": ID, "rating": "up"})
    assert status == 503 and body["error"] == "DependencyUnavailable" and body["dependency"] == "interaction log"
