"""The three handlers end to end: custom resource, loop start from SQS, results from S3 (moto)."""

from __future__ import annotations

import importlib
import json

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from tests.lambdas.context import LambdaContext
from tests.lambdas.human_review.test_routing_loops_results import FLOW, REVIEW, _output


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LLMOps")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "human_review")
    monkeypatch.setenv("FLOW_DEFINITION_ARN", FLOW)
    monkeypatch.setenv("REVIEW_INSTRUCTIONS", "Rate it.")
    monkeypatch.setenv("REVIEW_DATASET", "reviewed-answers")
    monkeypatch.setenv("EVALUATION_PREFIX", "reviews/evaluation/")
    monkeypatch.setenv("DATA_BUCKET", "data")


def _sqs_event(*bodies):
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": "r", "body": body, "attributes": {}, "messageAttributes": {},
                         "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                         "awsRegion": "us-east-1"} for i, body in enumerate(bodies)]}


def test_start_handler_starts_loops_and_reports_a_malformed_message_as_a_batch_failure(env):
    module = importlib.import_module("lambdas.human_review_start.handler")
    client = boto3.client("sagemaker-a2i-runtime")
    module.a2i.cache_clear()
    stub = Stubber(client)
    stub.add_response("start_human_loop", {"HumanLoopArn": "arn:aws:sagemaker:us-east-1:123456789012:human-loop/x"},
                      {"HumanLoopName": REVIEW.loop_name(), "FlowDefinitionArn": FLOW, "HumanLoopInput": ANY})
    with stub:
        original = module.a2i
        module.a2i = lambda: client
        try:
            result = module.handler(_sqs_event(REVIEW.model_dump_json(), '{"question": "no id"}'), LambdaContext())
        finally:
            module.a2i = original
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


@pytest.fixture
def bucket(env):
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="data")
        module = importlib.import_module("lambdas.human_review_results.handler")
        module.s3.cache_clear()
        yield s3, module


def _created(key):
    return {"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {"name": "data"}, "object": {"key": key}}}


def test_results_handler_publishes_a_dataset_version_and_an_evaluation_record(bucket):
    s3, module = bucket
    key = "reviews/output/flow/2026/12/02/10/00/00/" + REVIEW.loop_name() + "/output.json"
    s3.put_object(Bucket="data", Key=key, Body=json.dumps(_output({"rating": 2, "corrected_answer": "Five business days [1]."})))
    result = module.handler(_created(key), LambdaContext())
    assert result["dataset_version"] == 1
    manifest = json.loads(s3.get_object(Bucket="data", Key="datasets/reviewed-answers/v1/manifest.json")["Body"].read())
    assert manifest["format"] == "instruction" and manifest["sources"] == [f"s3://data/{key}"]
    evaluation = json.loads(s3.get_object(Bucket="data", Key=f"reviews/evaluation/{REVIEW.loop_name()}.json")["Body"].read())
    assert evaluation["human_rating"] == 2


def test_results_handler_quarantines_a_malformed_output_with_its_reason(bucket):
    s3, module = bucket
    key = "reviews/output/flow/2026/12/02/10/00/00/llm-broken/output.json"
    s3.put_object(Bucket="data", Key=key, Body=b'{"humanLoopName": "llm-broken", "humanAnswers": []}')
    result = module.handler(_created(key), LambdaContext())
    assert "quarantined" in result
    reason = json.loads(s3.get_object(Bucket="data", Key=result["quarantined"])["Body"].read())
    assert reason["source"] == key and "inputContent" in reason["reason"]


def test_results_handler_refuses_an_event_that_is_not_an_s3_event(bucket):
    _, module = bucket
    with pytest.raises(ValueError, match="not an S3 Object Created event"):
        module.handler({"detail": {}}, LambdaContext())
    with pytest.raises(ValueError, match="bucket 'other' is not the platform's data bucket 'data'"):
        module.handler({"detail": {"bucket": {"name": "other"}, "object": {"key": "reviews/output/x/output.json"}}},
                       LambdaContext())


def test_flow_handler_delegates_to_the_custom_resource(env, monkeypatch):
    module = importlib.import_module("lambdas.human_review_flow.handler")
    client = boto3.client("sagemaker")
    monkeypatch.setattr(module.boto3, "client", lambda name: client)
    with Stubber(client) as stub:
        stub.add_response("delete_flow_definition", {}, {"FlowDefinitionName": "p-review-flow-1"})
        stub.add_response("delete_human_task_ui", {}, {"HumanTaskUiName": "p-review-ui-1"})
        assert module.handler({"RequestType": "Delete", "PhysicalResourceId": "p-review-flow-1"}, LambdaContext()) == {
            "PhysicalResourceId": "p-review-flow-1"}
