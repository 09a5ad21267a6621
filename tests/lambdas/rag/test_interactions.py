"""The interaction log's item shape, size bound and stream decoding (moto DynamoDB)."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from moto import mock_aws

from lambdas.runtime.rag.interactions import MAX_RECORD_BYTES, InteractionLog, InteractionLogError, item_to_record


@pytest.fixture
def table(aws_env):
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName="interactions", KeySchema=[{"AttributeName": "interaction_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "interaction_id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        yield "interactions"


def record(**metadata):
    return {"prompt": "q?", "question": "q?", "response": "a.", "contexts": ["p1", "p2"],
            "metadata": {"source": "rag", "prompt_id": "rag-answer", "prompt_version": 3, **metadata}}


def test_put_then_get_round_trips_the_record(table):
    log = InteractionLog(table, retention_days=2)
    now = dt.datetime(2026, 12, 2, 12, tzinfo=dt.timezone.utc)
    interaction_id = log.put(record(scores=[0.5, 0.25]), now=now)
    got = log.get(interaction_id)
    assert got["metadata"]["id"] == interaction_id and got["metadata"]["scores"] == [0.5, 0.25]
    item = boto3.client("dynamodb").get_item(TableName=table, Key={"interaction_id": {"S": interaction_id}})["Item"]
    assert item["expires_at"]["N"] == str(int(now.timestamp()) + 2 * 86400)
    assert item["prompt_version"]["N"] == "3" and item["recorded_at"]["S"] == "2026-12-02T12:00:00+00:00"


def test_an_id_is_never_overwritten(table):
    log = InteractionLog(table)
    log.put(record(id="fixed"))
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        log.put(record(id="fixed"))


def test_huge_passages_are_cut_and_marked_but_question_and_answer_kept(table):
    log = InteractionLog(table)
    big = record()
    big["contexts"] = ["é" * 200_000, "x" * 200_000]
    interaction_id = log.put(big)
    got = log.get(interaction_id)
    assert got["metadata"]["truncated"] is True and got["response"] == "a."
    assert len(json.dumps(got, ensure_ascii=False).encode()) <= MAX_RECORD_BYTES


def test_a_record_too_large_without_passages_is_refused_naming_the_size(table):
    huge = record()
    huge["response"] = "y" * (MAX_RECORD_BYTES + 10)
    with pytest.raises(InteractionLogError, match="bytes even without passages"):
        InteractionLog(table).put(huge)


def test_stream_images_decode_with_feedback_merged():
    image = {"interaction_id": {"S": "i-1"}, "record": {"S": json.dumps(record(id="i-1"))},
             "feedback": {"M": {"rating": {"S": "down"}, "comment": {"S": "wrong"}, "at": {"S": "2026-12-02T12:00:00Z"}}}}
    got = item_to_record(image)
    assert got["metadata"]["feedback"] == {"rating": "down", "comment": "wrong", "at": "2026-12-02T12:00:00Z"}
    with pytest.raises(InteractionLogError, match="no 'record'"):
        item_to_record({"interaction_id": {"S": "i-2"}})


def test_configuration_errors_name_the_setting():
    with pytest.raises(InteractionLogError, match="INTERACTIONS_TABLE"):
        InteractionLog("")
    with pytest.raises(InteractionLogError, match="retention_days"):
        InteractionLog("t", client=object(), retention_days=0)
    assert InteractionLog.from_env({}) is None
