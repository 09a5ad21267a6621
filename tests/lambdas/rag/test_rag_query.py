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
