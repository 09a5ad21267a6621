"""Human review end to end with the real handlers on moto: a query's answer is flagged in the interaction
log, the batch scorer routes the log's stream records, the loop starts, the review comes
back and becomes a dataset version. A2I through botocore Stubber (moto has no A2I)."""

from __future__ import annotations

import importlib
import json

import boto3
import pytest
import requests
from botocore.stub import ANY, Stubber
from moto import mock_aws

from lambdas.rag_query import handler as query_handler
from lambdas.runtime.human_review.model import ReviewInput
from lambdas.runtime.rag.chunking import TokenChunker
from lambdas.runtime.rag.ingest import IngestionPipeline
from lambdas.runtime.rag.interactions import item_to_record
from lambdas.runtime.rag.loaders import SourceRef
from tests.lambdas.context import LambdaContext as BaseContext
from tests.lambdas.rag.corpus import POLICY_MD
from tests.lambdas.rag.events import LambdaContext, api_event

pytestmark = pytest.mark.postgres
REGION = "eu-west-1"
FLOW = f"arn:aws:sagemaker:{REGION}:123456789012:flow-definition/llmops-dev-review-flow-abc"
TABLE, QUEUE, BUCKET, DATASET = "llmops-dev-interactions", "llmops-dev-review", "llmops-dev-data", "reviewed-answers"
REFUSAL = "I'm sorry, but I cannot answer that from the documents."


@pytest.fixture
def env(aws_env, monkeypatch, pg_conninfo, store, embedder):
    pipeline = IngestionPipeline(store, embedder, TokenChunker(chunk_size=64, chunk_overlap=8))
    pipeline.ingest_bytes("s3://docs/uploads/policy.md", "policy.md", POLICY_MD.encode(), SourceRef("docs", "uploads/policy.md", "v1"))
    for name, value in {
        "VECTOR_STORE_BACKEND": "aurora-pgvector", "PG_CONNINFO": pg_conninfo, "PG_TABLE": store.table,
        "EMBEDDING_PROVIDER": "local", "EMBEDDING_DIMENSION": "384", "TOP_K": "3", "MAX_QUESTION_CHARS": "200",
        "PROMPT_ID": "rag-answer", "PROMPT_ALIAS": "prod", "LLM_PROVIDER": "sagemaker", "LLM_ENDPOINT_NAME": "llm-tgi",
        "LLM_CONTAINER": "tgi", "INTERACTIONS_TABLE": TABLE, "REVIEW_ROUTING": json.dumps({"sample_rate": 0.0}),  # no sampling: the test says why it routed
        "FLOW_DEFINITION_ARN": FLOW, "REVIEW_INSTRUCTIONS": "Rate it.", "REVIEW_DATASET": DATASET,
        "EVALUATION_PREFIX": "reviews/evaluation/", "DATA_BUCKET": BUCKET,
        # The batch scorer: the same rules as the query function, under the same variable.
        "DRIFT_METRICS": json.dumps(["refusal"]),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PROMPT_TABLE_NAME", raising=False)
    caches = [query_handler.pipeline, query_handler.dynamodb, query_handler.routing_rules, query_handler.interaction_log]
    for cache in caches:
        cache.cache_clear()
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "interaction_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "interaction_id", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        boto3.client("sqs").create_queue(QueueName=QUEUE)
        boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield dynamodb
    for cache in caches:
        cache.cache_clear()


def stream_records(dynamodb) -> list[dict]:
    """The table's stream as Lambda's DynamoDB event source delivers it (``Records[].dynamodb.NewImage``)."""
    streams = boto3.client("dynamodbstreams")
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return streams.get_records(ShardIterator=iterator)["Records"]


def sqs_event(messages: list[dict]) -> dict:
    return {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                         "attributes": {}, "messageAttributes": {}, "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
                         "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:{QUEUE}", "awsRegion": REGION}
                        for m in messages]}


def test_a_refused_answer_travels_from_the_query_to_a_dataset_version(env, monkeypatch):
    dynamodb = env
    # 1. The query: the model refuses; the answer comes back at once and the interaction is logged, flagged.
    generation = [{"generated_text": f" {REFUSAL}", "details": {"finish_reason": "eos_token", "generated_tokens": 12}}]
    requests.post("http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
                  json={"region": REGION, "results": [{"Body": json.dumps(generation), "ContentType": "application/json"}]})
    response = query_handler.handler(api_event({"question": "How many days do I have to ask for a refund?"}), LambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    assert body["answer"] == REFUSAL
    interaction_id = body["interaction_id"]
    item = dynamodb.get_item(TableName=TABLE, Key={"interaction_id": {"S": interaction_id}})["Item"]
    assert item_to_record(item)["metadata"]["review"] == ["refusal"]

    # 2. The caller disagrees: POST /feedback stores a thumbs-down on the same item (a stream MODIFY).
    response = query_handler.handler(api_event({"interaction_id": interaction_id, "rating": "down", "comment": "it is 30 days"},
                                               path="/feedback"), LambdaContext())
    assert response["statusCode"] == 200, response["body"]

    # 3. The batch scorer (monitoring_score, the real handler) reads the stream: the INSERT is scored and
    #    routed by the rules plus the query path's reasons, the thumbs-down MODIFY is routed as negative feedback.
    records = stream_records(dynamodb)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY"]
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    monkeypatch.setenv("REVIEW_QUEUE_URL", url)
    scorer = importlib.import_module("lambdas.monitoring_score.handler")
    scorer.clients.cache_clear()
    scorer.settings.cache_clear()
    try:
        assert scorer.handler({"Records": [{**r, "eventSource": "aws:dynamodb"} for r in records]}, BaseContext()) == {
            "batchItemFailures": []}
    finally:
        scorer.clients.cache_clear()
        scorer.settings.cache_clear()
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    routed = [ReviewInput.model_validate_json(m["Body"]) for m in messages]
    # The scorer embeds with the index's model (EMBEDDING_PROVIDER, here the local MiniLM): a refusal is
    # also irrelevant and unsupported by the passage, so those rules fire beside the query path's reason.
    first, feedback = (r.reasons for r in routed)
    assert first[0] == "refusal" and any(x.startswith("relevance") for x in first) \
        and any(x.startswith("hallucination") for x in first)
    # The MODIFY carries the query path's reason and the thumbs-down (it is not re-scored).
    assert feedback == ("refusal", "negative feedback")
    assert {r.interaction_id for r in routed} == {interaction_id}

    # 4. Loop start (existing handler): one loop per interaction; the second message finds it started.
    start = importlib.import_module("lambdas.human_review_start.handler")
    start.a2i.cache_clear()
    a2i = start.a2i()
    loop_name = routed[0].loop_name()
    inputs: list[dict] = []
    with Stubber(a2i) as stub:
        stub.add_response("start_human_loop", {"HumanLoopArn": f"arn:aws:sagemaker:{REGION}:123456789012:human-loop/{loop_name}"},
                          {"HumanLoopName": loop_name, "FlowDefinitionArn": FLOW, "HumanLoopInput": ANY})
        stub.add_client_error("start_human_loop", service_error_code="ConflictException", http_status_code=409,
                              expected_params={"HumanLoopName": loop_name, "FlowDefinitionArn": FLOW, "HumanLoopInput": ANY})
        a2i.meta.events.register("before-parameter-build.sagemaker-a2i-runtime.StartHumanLoop",
                                 lambda params, **_: inputs.append(dict(params)))
        result = start.handler(sqs_event(messages), BaseContext())
        stub.assert_no_pending_responses()
    start.a2i.cache_clear()
    assert result == {"batchItemFailures": []}
    content = json.loads(inputs[0]["HumanLoopInput"]["InputContent"])
    assert content["interaction_id"] == interaction_id and content["answer"] == REFUSAL
    assert content["instructions"] == "Rate it." and content["reasons"] == list(first)

    # 5. The reviewer's answer as A2I writes it under reviews/output/, then the results handler.
    output = {"flowDefinitionArn": FLOW, "humanLoopName": loop_name, "inputContent": content,
              "humanAnswers": [{"answerContent": {"rating": {"1": True}, "unhelpful_refusal": {"on": True},
                                                  "corrected_answer": "Refunds can be requested within 30 days [1]."},
                                "workerId": "w1", "submissionTime": "2026-12-02T10:00:00Z"}]}
    key = f"reviews/output/llmops-dev-review-flow-abc/2026/12/02/10/00/00/{loop_name}/output.json"
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(output).encode())
    results = importlib.import_module("lambdas.human_review_results.handler")
    results.s3.cache_clear()
    outcome = results.handler({"detail-type": "Object Created", "source": "aws.s3",
                               "detail": {"bucket": {"name": BUCKET}, "object": {"key": key}}}, BaseContext())
    results.s3.cache_clear()

    # 6. A new dataset version holding the corrected answer, and the evaluation record.
    assert outcome["loop"] == loop_name and outcome["dataset_version"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"datasets/{DATASET}/")["Contents"]]
    data_keys = [k for k in keys if k.endswith(".jsonl")]
    assert data_keys, keys
    pairs = [json.loads(line) for k in data_keys
             for line in s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().decode().splitlines() if line]
    assert [p["response"] for p in pairs] == ["Refunds can be requested within 30 days [1]."]
    assert pairs[0]["instruction"] == "How many days do I have to ask for a refund?"
    evaluation = json.loads(s3.get_object(Bucket=BUCKET, Key=f"reviews/evaluation/{loop_name}.json")["Body"].read())
    assert evaluation["interaction_id"] == interaction_id
    assert evaluation["human_rating"] == 1 and evaluation["human_problems"]["unhelpful_refusal"] == 1
