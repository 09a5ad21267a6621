"""rag_query handler: API Gateway proxy events, the real embedding model and PostgreSQL + pgvector,
the LLM through moto's queued SageMaker runtime results or a botocore Stubber."""

from __future__ import annotations

import json

import boto3
import pytest
import requests
from botocore.stub import ANY, Stubber
from moto import mock_aws

from lambdas.rag_query import handler as query_handler
from lambdas.runtime.rag.chunking import TokenChunker
from lambdas.runtime.rag.ingest import IngestionPipeline
from lambdas.runtime.rag.llm import BedrockConverseLlm, SageMakerLlm
from lambdas.runtime.rag.loaders import SourceRef
from lambdas.runtime.rag.prompting import DefaultPromptSource
from lambdas.runtime.rag.query import QueryPipeline
from tests.lambdas.rag.corpus import ONBOARDING_TXT, POLICY_MD, WARRANTY_HTML, pdf_bytes
from tests.lambdas.rag.events import LambdaContext, api_event

pytestmark = pytest.mark.postgres
BUILD_PIPELINE = query_handler.pipeline


@pytest.fixture(scope="module")
def indexed(pg_conninfo, embedder):
    import psycopg

    from lambdas.runtime.rag.pgvector import PgVectorStore

    store = PgVectorStore(pg_conninfo, table="query_corpus", dimension=384)
    store.ensure_schema()
    pipeline = IngestionPipeline(store, embedder, TokenChunker(chunk_size=64, chunk_overlap=8))
    for name, data in (("policy.md", POLICY_MD.encode()), ("warranty.html", WARRANTY_HTML.encode()),
                       ("onboarding.txt", ONBOARDING_TXT.encode()),
                       ("invoice.pdf", pdf_bytes(["Invoices are due within 45 days.", "Late fees are 2 percent a month."]))):
        pipeline.ingest_bytes(f"s3://docs/uploads/{name}", name, data, SourceRef("docs", f"uploads/{name}", "v1"))
    yield store
    store.close()
    with psycopg.connect(pg_conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE query_corpus")


@pytest.fixture
def env(aws_env, monkeypatch, pg_conninfo, indexed):
    for name, value in {
        "VECTOR_STORE_BACKEND": "aurora-pgvector",
        "PG_CONNINFO": pg_conninfo,
        "PG_TABLE": indexed.table,
        "EMBEDDING_PROVIDER": "local",
        "EMBEDDING_DIMENSION": "384",
        "TOP_K": "3",
        "MAX_QUESTION_CHARS": "200",
        "PROMPT_ID": "rag-answer",
        "PROMPT_ALIAS": "prod",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PROMPT_TABLE_NAME", raising=False)
    BUILD_PIPELINE.cache_clear()
    yield monkeypatch
    BUILD_PIPELINE.cache_clear()


def call(body=None, *, raw=None) -> tuple[int, dict]:
    response = query_handler.handler(api_event(body, raw=raw), LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def emf_records(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"_aws"' in line]


def test_answer_from_a_tgi_endpoint_with_citations_and_metrics(env, capsys):
    env.setenv("LLM_PROVIDER", "sagemaker")
    env.setenv("LLM_ENDPOINT_NAME", "llm-tgi")
    env.setenv("LLM_CONTAINER", "tgi")
    with mock_aws():
        generation = [{"generated_text": " Refunds can be requested within 30 days [1].",
                       "details": {"finish_reason": "eos_token", "generated_tokens": 11,
                                   "prefill": [{"id": i, "text": "t", "logprob": None} for i in range(57)]}}]
        requests.post("http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
                      json={"region": "eu-west-1", "results": [{"Body": json.dumps(generation), "ContentType": "application/json"}]})
        status, body = call({"question": "How many days do I have to ask for a refund?"})
    assert status == 200, body
    assert body["answer"] == "Refunds can be requested within 30 days [1]."
    assert body["llm_called"] is True and body["model"] == "sagemaker:llm-tgi"
    assert (body["prompt_id"], body["prompt_version"]) == ("rag-answer", 0)
    assert (body["prompt_tokens"], body["completion_tokens"]) == (57, 11)
    assert len(body["citations"]) == 3
    top = body["citations"][0]
    assert top["source"] == "s3://docs/uploads/policy.md" and top["page"] == 1 and "30 days" in top["text"]
    assert top["score"] >= body["citations"][1]["score"]
    [emf] = emf_records(capsys.readouterr().out)
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "LLMOps"
    assert set(directive["Dimensions"][0]) >= {"PromptId", "PromptVersion"}
    assert (emf["PromptId"], emf["PromptVersion"]) == ("rag-answer", "0")
    names = {m["Name"] for m in directive["Metrics"]}
    assert names >= {"ChunksRetrieved", "TopScore", "EmbeddingLatency", "RetrievalLatency", "GenerationLatency",
                     "PromptTokens", "CompletionTokens"}
    assert (emf["ChunksRetrieved"], emf["PromptTokens"], emf["CompletionTokens"]) == ([3.0], [57.0], [11.0])


def test_filters_and_top_k_narrow_the_passages(env):
    status, body = call({"question": "When are invoices due?", "top_k": 5,
                         "filters": {"source_key": "uploads/invoice.pdf", "page": 1}})
    assert status == 200, body
    assert [(c["source"], c["page"]) for c in body["citations"]] == [("s3://docs/uploads/invoice.pdf", 1)]
    assert body["llm_called"] is False and "No LLM was called" in body["note"]
    assert "45 days" in body["answer"]


@pytest.mark.parametrize(
    ("payload", "raw", "message"),
    [
        ({"question": "   "}, None, "question must not be empty"),
        ({"question": "x" * 201}, None, "question is 201 characters; the limit is 200"),
        ({}, None, "question is required"),
        ({"question": "refunds?", "filters": {"colour": "red"}}, None, "unknown filter field(s): colour"),
        ({"question": "refunds?", "top_k": 0}, None, "top_k must be an integer from 1 to 50"),
        ({"question": "refunds?", "filters": {"language": ["en"]}}, None, "filter 'language' must be a string"),
        ({"question": "refunds?", "topk": 3}, None, "unknown request field(s): topk"),
        (None, "{not json", "the body must be valid JSON"),
        (None, '["a list"]', "the body must be a JSON object"),
    ],
)
def test_bad_requests_get_400_naming_the_problem(env, payload, raw, message):
    status, body = call(payload, raw=raw)
    assert status == 400
    assert message in body["message"]


def bedrock_pipeline(store, embedder, client) -> QueryPipeline:
    llm = BedrockConverseLlm("anthropic.claude-3-haiku-20240307-v1:0", client=client, sleep=lambda s: None, attempts=3)
    return QueryPipeline(store, embedder, DefaultPromptSource(), llm)


def test_bedrock_converse_request_and_usage(env, indexed, embedder):
    client = boto3.client("bedrock-runtime", region_name="eu-west-1")
    stub = Stubber(client)
    stub.add_response(
        "converse",
        {"output": {"message": {"role": "assistant", "content": [{"text": "Laptops have a two-year warranty [1]."}]}},
         "stopReason": "end_turn", "usage": {"inputTokens": 210, "outputTokens": 12, "totalTokens": 222},
         "metrics": {"latencyMs": 640}},
        {"modelId": "anthropic.claude-3-haiku-20240307-v1:0",
         "messages": [{"role": "user", "content": [{"text": ANY}]}],
         "inferenceConfig": {"maxTokens": 512, "temperature": 0.1}},
    )
    stub.activate()
    env.setattr(query_handler, "pipeline", lambda: bedrock_pipeline(indexed, embedder, client))
    status, body = call({"question": "How long is the laptop warranty?"})
    assert status == 200, body
    assert body["answer"] == "Laptops have a two-year warranty [1]."
    assert (body["prompt_tokens"], body["completion_tokens"]) == (210, 12)
    assert body["citations"][0]["source"] == "s3://docs/uploads/warranty.html"
    stub.assert_no_pending_responses()


def test_llm_throttling_is_retried_then_503(env, indexed, embedder):
    client = boto3.client("bedrock-runtime", region_name="eu-west-1")
    stub = Stubber(client)
    for _ in range(3):
        stub.add_client_error("converse", service_error_code="ThrottlingException", service_message="Too many requests",
                              http_status_code=429)
    stub.activate()
    env.setattr(query_handler, "pipeline", lambda: bedrock_pipeline(indexed, embedder, client))
    status, body = call({"question": "How long is the laptop warranty?"})
    assert status == 503
    assert "anthropic.claude-3-haiku-20240307-v1:0" in body["message"] and "3 attempts" in body["message"]
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("code, message", [
    ("ValidationError", "Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress"),
    ("ServiceUnavailable", "The endpoint currently has no instances to serve the request"),
])
def test_scaled_to_zero_endpoint_answers_503_model_is_starting(env, indexed, embedder, code, message):
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1")
    stub = Stubber(client)
    stub.add_client_error("invoke_endpoint", service_error_code=code, service_message=message, http_status_code=400)
    stub.activate()  # one response only: a cold start is not retried inside the 29 s request
    llm = SageMakerLlm("llmops-dev-llm", container="djl-lmi", client=client)
    env.setattr(query_handler, "pipeline", lambda: QueryPipeline(indexed, embedder, DefaultPromptSource(), llm))
    status, body = call({"question": "When are badge photos taken?"})
    assert status == 503 and body["reason"] == "model is starting"
    assert "llmops-dev-llm" in body["message"] and "retry in a few minutes" in body["message"]
    stub.assert_no_pending_responses()


def test_other_validation_errors_are_not_mistaken_for_a_cold_start(env, indexed, embedder):
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1")
    stub = Stubber(client)
    stub.add_client_error("invoke_endpoint", service_error_code="ValidationError",
                          service_message="Endpoint llmops-dev-llm of account 123 not found.", http_status_code=400)
    stub.activate()
    llm = SageMakerLlm("llmops-dev-llm", container="djl-lmi", client=client)
    env.setattr(query_handler, "pipeline", lambda: QueryPipeline(indexed, embedder, DefaultPromptSource(), llm))
    status, body = call({"question": "When are badge photos taken?"})
    # a structured 502 naming the model, not a 503 "model is starting"
    assert status == 502 and body["dependency"] == "language model" and "reason" not in body


def test_djl_lmi_payload_and_response(env, indexed, embedder):
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1")
    stub = Stubber(client)
    captured = {}

    class Body:
        """Matches any request body and keeps it, so the payload can be checked as JSON."""

        def __eq__(self, other):
            captured["body"] = json.loads(other)
            return True

        def __ne__(self, other):
            return not self.__eq__(other)

    answer = {"generated_text": "Badge photos are taken between 9 and 11 [1].",
              "details": {"finish_reason": "eos_token", "generated_tokens": 14, "inputs": "...", "tokens": []}}
    from io import BytesIO

    from botocore.response import StreamingBody
    raw = json.dumps(answer).encode()
    stub.add_response("invoke_endpoint", {"Body": StreamingBody(BytesIO(raw), len(raw)), "ContentType": "application/json"},
                      {"EndpointName": "llm-lmi", "ContentType": "application/json", "Accept": "application/json",
                       "Body": Body()})
    stub.activate()
    llm = SageMakerLlm("llm-lmi", container="djl-lmi", client=client)
    env.setattr(query_handler, "pipeline", lambda: QueryPipeline(indexed, embedder, DefaultPromptSource(), llm))
    status, body = call({"question": "When are badge photos taken?"})
    assert status == 200, body
    assert body["answer"] == "Badge photos are taken between 9 and 11 [1]."
    assert body["completion_tokens"] == 14 and body["prompt_tokens"] is None
    sent = captured["body"]
    assert sent["parameters"]["max_new_tokens"] == 512 and sent["parameters"]["details"] is True
    assert "Question: When are badge photos taken?" in sent["inputs"] and "[1] (s3://docs/uploads/" in sent["inputs"]


def test_kendra_retriever_is_queried_with_the_question_not_a_vector(env):
    from lambdas.runtime.rag.kendra import KendraRetriever

    client = boto3.client("kendra", region_name="eu-west-1")
    stub = Stubber(client)
    index_id = "0123456789abcdef0123456789abcdef0123"
    stub.add_response("retrieve", {
        "QueryId": "q-1",
        "ResultItems": [{
            "Id": "r-1", "DocumentId": "s3://docs/handbook.pdf", "DocumentTitle": "Handbook",
            "Content": "Employees get 25 days of annual leave.", "DocumentURI": "s3://docs/handbook.pdf",
            "DocumentAttributes": [{"Key": "_excerpt_page_number", "Value": {"LongValue": 4}}],
            "ScoreAttributes": {"ScoreConfidence": "HIGH"},
        }],
    }, {"IndexId": index_id, "QueryText": "How many days of annual leave?", "PageSize": 3})
    stub.activate()
    retriever = KendraRetriever(index_id, client=client)
    env.setattr(query_handler, "pipeline", lambda: QueryPipeline(retriever, None, DefaultPromptSource()))
    status, body = call({"question": "How many days of annual leave?"})
    assert status == 200, body
    assert [(c["source"], c["page"], c["score"]) for c in body["citations"]] == [("s3://docs/handbook.pdf", 4, 0.75)]
    assert "25 days" in body["answer"] and "embedding" not in body["timings_ms"]
    stub.assert_no_pending_responses()


def test_a_missing_catalog_prompt_is_a_500_that_says_so(env, indexed, embedder):
    from lambdas.runtime.prompt_catalog.errors import AliasNotFound

    class MissingAlias:
        def render(self, prompt_id, variables, alias="prod"):
            raise AliasNotFound(prompt_id, alias)

    env.setattr(query_handler, "pipeline", lambda: QueryPipeline(indexed, embedder, MissingAlias()))
    status, body = call({"question": "How long is the laptop warranty?"})
    assert status == 500
    assert body["message"] == "the answer prompt is unavailable: prompt 'rag-answer' has no alias 'prod'"


def test_an_unreachable_database_is_a_503_that_says_so(env):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepted by the kernel, never answered: a cluster still resuming
    try:
        env.setenv("PG_CONNINFO", f"host=127.0.0.1 port={listener.getsockname()[1]} dbname=x user=x sslmode=disable")
        env.setenv("PG_CONNECT_TIMEOUT", "2")
        BUILD_PIPELINE.cache_clear()
        response = query_handler.handler(api_event({"question": "How long is the laptop warranty?"}), LambdaContext())
    finally:
        listener.close()
    assert response["statusCode"] == 503 and response["multiValueHeaders"]["Retry-After"] == ["10"]
    assert "did not accept a connection within 2 s" in json.loads(response["body"])["message"]


# ---- failing dependencies: structured 502/503/504 naming the dependency and the request id ----

REQUEST_ID = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"  # the id tests.lambdas.rag.events.api_event carries


def _assert_no_internals(body: dict, *secrets: str) -> None:
    text = json.dumps(body)
    assert "Traceback" not in text and "botocore" not in text and "psycopg" not in text
    for secret in secrets:
        assert secret not in text


def test_a_model_error_is_a_502_naming_the_language_model(env, indexed, embedder):
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1")
    stub = Stubber(client)
    stub.add_client_error("invoke_endpoint", service_error_code="ModelError", http_status_code=424,
                          service_message="Received server error (500) from primary: CUDA out of memory at 0x7f3a")
    stub.activate()
    llm = SageMakerLlm("llm-tgi", container="tgi", client=client, sleep=lambda s: None)
    env.setattr(query_handler, "pipeline", lambda: QueryPipeline(indexed, embedder, DefaultPromptSource(), llm))
    status, body = call({"question": "How long is the laptop warranty?"})
    assert status == 502
    assert body == {"error": "DependencyFailed", "dependency": "language model", "request_id": REQUEST_ID,
                    "message": "the language model answered with an error"}
    _assert_no_internals(body, "CUDA", "ModelError")


def test_an_unreachable_database_is_a_503_naming_the_vector_store(env, embedder):
    import socket

    from lambdas.runtime.rag.pgvector import PgVectorStore

    with socket.socket() as probe:  # a port nobody listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = PgVectorStore(f"host=127.0.0.1 port={port} dbname=x user=u password=hunter2 connect_timeout=2", table="t")
    env.setattr(query_handler, "pipeline", lambda: QueryPipeline(store, embedder, DefaultPromptSource()))
    response = query_handler.handler(api_event({"question": "How long is the laptop warranty?"}), LambdaContext())
    body = json.loads(response["body"])
    headers = response.get("headers") or {k: v[0] for k, v in response["multiValueHeaders"].items()}
    assert response["statusCode"] == 503 and headers["Retry-After"] == "10"
    assert (body["error"], body["dependency"], body["request_id"]) == ("DependencyUnavailable", "vector store", REQUEST_ID)
    assert body["message"].startswith("the vector store is unavailable: the vector database did not accept a connection")
    _assert_no_internals(body, "hunter2", str(port))


def test_a_model_that_does_not_answer_in_time_is_a_504(env, indexed, embedder):
    import socket
    import threading

    from botocore.config import Config

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []
    # Accepts the connection and never answers: a real read timeout in botocore.
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1", endpoint_url=f"http://127.0.0.1:{server.getsockname()[1]}",
                          config=Config(read_timeout=1, connect_timeout=1, retries={"total_max_attempts": 1}))
    llm = SageMakerLlm("llm-tgi", container="tgi", client=client, sleep=lambda s: None)
    env.setattr(query_handler, "pipeline", lambda: QueryPipeline(indexed, embedder, DefaultPromptSource(), llm))
    try:
        status, body = call({"question": "How long is the laptop warranty?"})
    finally:
        server.close()
    assert status == 504
    assert (body["error"], body["dependency"], body["request_id"]) == ("DependencyTimeout", "language model", REQUEST_ID)
    _assert_no_internals(body, "127.0.0.1")


def test_a_bug_is_a_500_with_the_request_id_and_no_details(env, indexed, embedder):
    class Broken:
        def render(self, prompt_id, variables, alias="prod"):
            return {}["secret-key-name"]

    env.setattr(query_handler, "pipeline", lambda: QueryPipeline(indexed, embedder, Broken()))
    status, body = call({"question": "How long is the laptop warranty?"})
    assert status in (500, 502) and body["request_id"] == REQUEST_ID
    _assert_no_internals(body, "secret-key-name")


def test_a_prompt_version_without_temperature_or_max_tokens_answers(env, indexed, embedder):
    from lambdas.runtime.prompt_catalog.model import RenderedPrompt

    class NoParameters:
        def render(self, prompt_id, variables, alias="prod"):
            text = DefaultPromptSource().render(prompt_id, variables).text
            return RenderedPrompt(text=text, prompt_id=prompt_id, version=7, content_hash="h",
                                  model_parameters={"temperature": None, "max_tokens": None, "top_p": None, "stop": []})

    client = boto3.client("bedrock-runtime", region_name="eu-west-1")
    stub = Stubber(client)
    stub.add_response("converse", {"output": {"message": {"role": "assistant", "content": [{"text": "Two years [1]."}]}},
                                   "stopReason": "end_turn", "usage": {"inputTokens": 9, "outputTokens": 3, "totalTokens": 12},
                                   "metrics": {"latencyMs": 5}},
                      {"modelId": "m", "messages": ANY, "inferenceConfig": {"maxTokens": 512, "temperature": 0.1}})
    stub.activate()
    llm = BedrockConverseLlm("m", client=client, sleep=lambda s: None)
    env.setattr(query_handler, "pipeline", lambda: QueryPipeline(indexed, embedder, NoParameters(), llm))
    status, body = call({"question": "How long is the laptop warranty?"})
    assert status == 200, body
    assert body["answer"] == "Two years [1]." and body["prompt_version"] == 7


def test_an_unknown_route_is_a_404_not_the_catch_all_500(env):
    response = query_handler.handler(api_event({"question": "q"}, path="/nope"), LambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 404 and body["error"] == "NotFound" and body["request_id"] == REQUEST_ID


def _interactions_table(name: str = "t-interactions") -> str:
    boto3.client("dynamodb").create_table(
        TableName=name, KeySchema=[{"AttributeName": "interaction_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "interaction_id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    return name


def test_every_answer_is_logged_with_its_id_in_the_response(env):
    from lambdas.runtime.rag.interactions import InteractionLog

    env.setenv("LLM_PROVIDER", "sagemaker")
    env.setenv("LLM_ENDPOINT_NAME", "llm-tgi")
    env.setenv("LLM_CONTAINER", "tgi")
    query_handler.interaction_log.cache_clear()
    with mock_aws():
        env.setenv("INTERACTIONS_TABLE", _interactions_table())
        env.setenv("INTERACTION_RETENTION_DAYS", "7")
        requests.post("http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
                      json={"region": "eu-west-1", "results": [{"Body": json.dumps([{"generated_text": "Within 30 days [1]."}]),
                                                                "ContentType": "application/json"}]})
        status, body = call({"question": "How many days do I have to ask for a refund?"})
        assert status == 200, body
        item = boto3.client("dynamodb").get_item(TableName="t-interactions",
                                                 Key={"interaction_id": {"S": body["interaction_id"]}})["Item"]
        record = InteractionLog("t-interactions").get(body["interaction_id"])
    query_handler.interaction_log.cache_clear()
    assert int(item["expires_at"]["N"]) - int(__import__("datetime").datetime.fromisoformat(item["recorded_at"]["S"]).timestamp()) == 7 * 86400
    assert (item["prompt_id"]["S"], item["prompt_version"]["N"]) == ("rag-answer", "0")
    # The monitoring record format: the batch scorer and `llmops monitor score` read the same shape.
    from lambdas.runtime.monitoring.records import validate_record

    interaction = validate_record(record)
    assert interaction.question == "How many days do I have to ask for a refund?"
    assert interaction.response == "Within 30 days [1]." and len(interaction.contexts) == 3
    assert record["metadata"]["id"] == body["interaction_id"] and record["metadata"]["source"] == "rag"


def test_a_failed_log_write_still_answers_and_counts_the_failure(env, capsys):
    env.setenv("LLM_PROVIDER", "sagemaker")
    env.setenv("LLM_ENDPOINT_NAME", "llm-tgi")
    env.setenv("LLM_CONTAINER", "tgi")
    query_handler.interaction_log.cache_clear()
    with mock_aws():
        env.setenv("INTERACTIONS_TABLE", "no-such-table")
        requests.post("http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
                      json={"region": "eu-west-1", "results": [{"Body": json.dumps([{"generated_text": "Yes [1]."}]),
                                                                "ContentType": "application/json"}]})
        status, body = call({"question": "How many days do I have to ask for a refund?"})
    query_handler.interaction_log.cache_clear()
    assert status == 200 and body["answer"] == "Yes [1]." and body["interaction_id"]
    failures = [r for r in emf_records(capsys.readouterr().out) if "InteractionLogFailures" in r]
    assert len(failures) == 1
    # Its own blob, by service only: the alarm in RagStack matches these dimensions exactly.
    assert failures[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]


@pytest.mark.parametrize("routing, expected", [
    (None, None),  # human review off: no decision recorded
    ({"sample_rate": 0.0}, []),  # a good answer, not sampled: the decision is "no"
    ({"sample_rate": 1.0}, ["sampled (100%)"]),
    ({"sample_rate": 0.0, "min_top_score": 0.99}, "top retrieval score"),
])
def test_the_query_path_records_its_routing_decision_in_the_interaction_it_logs(env, capsys, routing, expected):
    from lambdas.runtime.rag.interactions import InteractionLog

    if routing is None:
        env.delenv("REVIEW_ROUTING", raising=False)
    else:
        env.setenv("REVIEW_ROUTING", json.dumps(routing))
    query_handler.interaction_log.cache_clear()
    query_handler.routing_rules.cache_clear()
    calls: list[str] = []
    with mock_aws():
        env.setenv("INTERACTIONS_TABLE", _interactions_table())
        query_handler.interaction_log().client.meta.events.register(
            "before-call.dynamodb", lambda model, **_: calls.append(model.name))
        status, body = call({"question": "When are invoices due?", "filters": {"source_key": "uploads/invoice.pdf"}})
        record = InteractionLog("t-interactions").get(body["interaction_id"])
    query_handler.interaction_log.cache_clear()
    query_handler.routing_rules.cache_clear()
    assert status == 200, body
    assert calls == ["PutItem"]  # the decision rides on the one write the answer makes anyway
    review = record["metadata"].get("review")
    if isinstance(expected, str):
        assert len(review) == 1 and review[0].startswith(expected)
    else:
        assert review == expected
    flagged = [r for r in emf_records(capsys.readouterr().out) if "ReviewFlagged" in r]
    assert len(flagged) == (1 if review else 0)
