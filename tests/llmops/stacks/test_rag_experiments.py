"""Experiments on the query side of the RAG stack: an index and embedding model per embedding arm, dual-write
ingestion, the EXPERIMENTS contract of the query function, a promoted winner as the only index."""

from __future__ import annotations

import json

import pytest

from llmops.config import ConfigError
from tests.helpers import config_with, synth_stage, template_of

ONLY_RAG = {"capabilities": {"data_prep": False, "prompt_catalog": False, "fine_tuning": False, "human_review": False}}
FUTURE = "2099-12-31"


def embedding_ab(second: dict, *, winner: str | None = None, weights=(50, 50)) -> dict:
    exp = {"kind": "embedding-ab", "end": FUTURE, "arms": [
        {"name": "minilm", "weight": weights[0], "model": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384},
        {"weight": weights[1], **second}]}
    if winner:
        exp["winner"] = winner
    return {"experiments": {"emb-test": exp}}


BGE = {"name": "bge", "model": "BAAI/bge-base-en-v1.5", "dimension": 768}
TITAN = {"name": "titan", "model": "amazon.titan-embed-text-v2:0", "dimension": 512}


def functions(template):
    return {r["Properties"]["Handler"].split(".")[1]: r["Properties"] for r in template.find_resources("AWS::Lambda::Function").values()
            if r["Properties"].get("Handler", "").startswith("lambdas.")}


def env_of(template, name):
    return functions(template)[name]["Environment"]["Variables"]


def statements(template):
    for policy in template.find_resources("AWS::IAM::Policy").values():
        yield from policy["Properties"]["PolicyDocument"]["Statement"]


def experiments_of(env):
    return json.loads(env["EXPERIMENTS"])


@pytest.fixture(scope="module")
def dev_bge():  # aurora-pgvector, the arm on a SageMaker endpoint of its own
    stage = synth_stage("dev", {**ONLY_RAG, **embedding_ab(BGE)})
    return template_of(stage.rag), template_of(stage.inference)


@pytest.fixture(scope="module")
def staging_titan():  # opensearch-serverless, the arm on Bedrock
    stage = synth_stage("staging", {**ONLY_RAG, **embedding_ab(TITAN)})
    return template_of(stage.rag)


def test_pgvector_gets_a_table_per_arm(dev_bge):
    rag, _ = dev_bge
    schemas = [r["Properties"] for r in rag.find_resources("Custom::PgVectorSchema").values()]
    assert sorted((s["Table"], s["Dimension"]) for s in schemas) == [("rag_chunks", "384"), ("rag_chunks_bge", "768")]


def test_the_arm_has_its_own_embedding_endpoint(dev_bge):
    _, inference = dev_bge
    endpoints = {r["Properties"]["EndpointName"] for r in inference.find_resources("AWS::SageMaker::Endpoint").values()}
    assert {"llmops-dev-embeddings", "llmops-dev-embeddings-bge"} <= endpoints
    models = [r["Properties"] for r in inference.find_resources("AWS::SageMaker::Model").values()]
    uris = [m["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]["S3Uri"] for m in models if "PrimaryContainer" in m]
    assert any("base-models/BAAI/bge-base-en-v1.5/main/" in json.dumps(u) for u in uris)


def test_query_and_ingest_get_the_arms_and_may_call_both_endpoints(dev_bge):
    rag, _ = dev_bge
    for fn in ("rag_query", "rag_ingest"):
        env = env_of(rag, fn)
        (exp,) = experiments_of(env)
        assert exp["name"] == "emb-test" and exp["kind"] == "embedding-ab" and exp["winner"] is None
        control, arm = exp["arms"]
        assert control == {"name": "minilm", "weight": 50, "model": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384}
        assert arm["environment"] == {"PG_TABLE": "rag_chunks_bge", "EMBEDDING_DIMENSION": "768", "EMBEDDING_PROVIDER": "sagemaker",
                                      "EMBEDDING_ENDPOINT_NAME": "llmops-dev-embeddings-bge", "EMBEDDING_MODEL_NAME": "BAAI/bge-base-en-v1.5"}
        assert env["PG_TABLE"] == "rag_chunks" and env["EMBEDDING_MODEL_NAME"] == "sentence-transformers/all-MiniLM-L6-v2"
    invoked = json.dumps([s["Resource"] for s in statements(rag) if "sagemaker:InvokeEndpoint" in json.dumps(s["Action"])])
    assert "llmops-dev-embeddings-bge" in invoked and "llmops-dev-embeddings\"" in invoked.replace("llmops-dev-embeddings-bge", "")


def test_ingestion_batch_shrinks_with_the_number_of_indexes(dev_bge):
    rag, _ = dev_bge
    (mapping,) = rag.find_resources("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["BatchSize"] == 1  # 3 documents for one index, 3 // 2 arms


def test_opensearch_gets_an_index_alias_per_arm_and_the_arm_calls_bedrock(staging_titan):
    indexes = [r["Properties"] for r in staging_titan.find_resources("Custom::VectorIndex").values()]
    assert sorted((i["Alias"], i["Dimension"]) for i in indexes) == [("rag-chunks", "384"), ("rag-chunks-titan", "512")]
    (exp,) = experiments_of(env_of(staging_titan, "rag_query"))
    assert exp["arms"][1]["environment"] == {"AOSS_INDEX": "rag-chunks-titan", "EMBEDDING_DIMENSION": "512",
                                             "EMBEDDING_PROVIDER": "bedrock", "EMBEDDING_MODEL_ID": "amazon.titan-embed-text-v2:0"}
    bedrock = [s for s in statements(staging_titan) if s["Action"] == "bedrock:InvokeModel"]
    assert len(bedrock) == 2 and all("foundation-model/amazon.titan-embed-text-v2:0" in json.dumps(s["Resource"]) for s in bedrock)


def test_a_promoted_winner_is_the_only_index_and_model():
    stage = synth_stage("dev", {**ONLY_RAG, **embedding_ab(BGE, winner="bge", weights=(0, 100))})
    rag = template_of(stage.rag)
    ingest, query = env_of(rag, "rag_ingest"), env_of(rag, "rag_query")
    assert "EXPERIMENTS" not in ingest  # no dual write
    for env in (ingest, query):
        assert env["PG_TABLE"] == "rag_chunks_bge" and env["EMBEDDING_DIMENSION"] == "768"
        assert env["EMBEDDING_ENDPOINT_NAME"] == "llmops-dev-embeddings-bge"
    (exp,) = experiments_of(query)  # still named, so records say which arm serves
    assert exp["winner"] == "bge" and all("environment" not in a for a in exp["arms"])
    invoked = json.dumps([s["Resource"] for s in statements(rag) if "sagemaker:InvokeEndpoint" in json.dumps(s["Action"])])
    assert "llmops-dev-embeddings-bge" in invoked
    assert "llmops-dev-embeddings\"" not in invoked.replace("llmops-dev-embeddings-bge", "")


def test_query_api_accepts_a_session_id():
    rag = template_of(synth_stage("dev", ONLY_RAG).rag)
    (model,) = [m for m in rag.find_resources("AWS::ApiGateway::Model").values() if m["Properties"]["Name"] == "QueryRequest"]
    prop = model["Properties"]["Schema"]["properties"]["session_id"]
    assert prop == {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[!-~]+$"}


@pytest.mark.parametrize("overrides, field", [
    ({"vector_store": {"backend": "kendra"}, **embedding_ab(BGE)}, "experiments.emb-test.kind"),
    (embedding_ab({**BGE, "name": "cohere", "model": "cohere.embed-english-v3", "dimension": 1024}),
     "experiments.emb-test.arms.cohere.model"),
    ({"inference": {"embeddings": {"enabled": False}}, "rag": {"embedding_endpoint_name": "elsewhere"}, **embedding_ab(BGE)},
     "experiments.emb-test.arms.bge.model"),
    ({"experiments": {"emb-test": {"kind": "embedding-ab", "end": FUTURE, "arms": [
        {"name": "bge-small", "weight": 50, "model": "BAAI/bge-small-en-v1.5", "dimension": 384},
        {"weight": 50, **BGE}]}}}, "experiments.emb-test.arms.bge-small.model"),
    ({"experiments": {"emb-test": {"kind": "embedding-ab", "end": FUTURE, "arms": [
        {"name": "minilm", "weight": 50, "model": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384},
        {"weight": 50, **BGE, "name": "x" * 60}]}}}, "experiments.emb-test.arms." + "x" * 60),
])
def test_config_refuses_what_cannot_run(overrides, field):
    with pytest.raises(ConfigError) as err:
        config_with("dev", overrides).get("dev")
    assert field in str(err.value)


def test_model_and_prompt_experiments_reach_the_query_function_only():
    overrides = {**ONLY_RAG, "capabilities": {**ONLY_RAG["capabilities"], "prompt_catalog": True},
                 "inference": {"llm": {"variants": {"blue": {"weight": 1}, "green": {"weight": 1}}}},
                 "experiments": {
                     "llm-test": {"kind": "model-ab", "endpoint": "llm", "end": FUTURE, "arms": [
                         {"name": "current", "weight": 70, "variant": "blue"}, {"name": "tuned", "weight": 30, "variant": "green"}]},
                     "prompt-test": {"kind": "prompt-ab", "prompt": "rag-answer", "end": FUTURE, "arms": [
                         {"name": "v1", "weight": 50, "version": 1}, {"name": "v2", "weight": 50, "version": 2}]},
                     "other-prompt": {"kind": "prompt-ab", "prompt": "summarise", "end": FUTURE, "arms": [
                         {"name": "v1", "weight": 50, "version": 1}, {"name": "v2", "weight": 50, "version": 2}]},
                 }}
    rag = template_of(synth_stage("staging", overrides).rag)
    exps = {e["name"]: e for e in experiments_of(env_of(rag, "rag_query"))}
    assert set(exps) == {"llm-test", "prompt-test"}  # the other prompt is not the query's
    assert exps["llm-test"] == {"name": "llm-test", "kind": "model-ab", "winner": None, "arms": [
        {"name": "current", "weight": 70, "variant": "blue"}, {"name": "tuned", "weight": 30, "variant": "green"}]}
    assert exps["prompt-test"]["arms"] == [{"name": "v1", "weight": 50, "version": 1}, {"name": "v2", "weight": 50, "version": 2}]
    assert "EXPERIMENTS" not in env_of(rag, "rag_ingest")


def test_no_experiments_no_variable():
    rag = template_of(synth_stage("dev", ONLY_RAG).rag)
    assert all("EXPERIMENTS" not in env_of(rag, fn) for fn in ("rag_query", "rag_ingest"))
