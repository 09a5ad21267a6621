"""Experiments on the query path: embedding A/B over real pgvector tables and the OpenSearch test double
(dual-write ingestion, per-index unchanged skip, sticky split), model A/B through ``TargetVariant``
(botocore Stubber with the InvokeEndpoint shapes), and the arm every answer records.

Only one embedding model is available offline (all-MiniLM-L6-v2), so the second arm embeds with
MiniLM's vectors through a fixed, seeded random projection to another dimension: a real, different
embedding of its own size, which is what the indexes and the split must keep apart.
"""

from __future__ import annotations

import json
import math
import uuid
from io import BytesIO

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from lambdas.runtime.experiments.assignment import Arm, Experiment, assign, parse_experiments
from lambdas.runtime.monitoring.records import record_from_answer
from lambdas.runtime.rag.arms import arm_backends, running_embedding_experiment
from lambdas.runtime.rag.chunking import TokenChunker
from lambdas.runtime.rag.ingest import IngestionPipeline
from lambdas.runtime.rag.llm import SageMakerLlm
from lambdas.runtime.rag.loaders import SourceRef
from lambdas.runtime.rag.prompting import DefaultPromptSource
from lambdas.runtime.rag.query import QueryPipeline, QueryRequest, InvalidQuery, parse_request
from lambdas.runtime.rag.store import FILTER_FIELDS, store_from_env
from tests.lambdas.rag.corpus import ONBOARDING_TXT, POLICY_MD, WARRANTY_HTML

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
DOCS = {"policy.md": POLICY_MD, "warranty.html": WARRANTY_HTML, "onboarding.txt": ONBOARDING_TXT}


class ProjectedMiniLM:
    """MiniLM through a seeded Gaussian projection to ``dimension`` values, re-normalised."""

    def __init__(self, base, dimension: int, seed: int = 15) -> None:
        self.base = base
        self.dimension = dimension
        self.model_name = f"minilm-projected-{dimension}"
        self._matrix = np.random.default_rng(seed).standard_normal((base.dimension, dimension)) / math.sqrt(dimension)

    def embed_documents(self, texts):
        vectors = np.asarray(self.base.embed_documents(list(texts))) @ self._matrix
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).tolist()

    def embed_query(self, text):
        return self.embed_documents([text])[0]


def embedding_experiment(weights=(50, 50), winner=None) -> Experiment:
    return Experiment("emb-test", "embedding-ab", (Arm("minilm", weights[0], model=MINILM, dimension=384),
                                                  Arm("projected", weights[1], model="minilm-projected-256", dimension=256)),
                      winner=winner)


def ingest_all(pipeline):
    return {name: pipeline.ingest_bytes(f"s3://docs/uploads/{name}", name, text.encode(), SourceRef("docs", f"uploads/{name}", "v1"))
            for name, text in DOCS.items()}


# -- pgvector ------------------------------------------------------------------------------------

@pytest.fixture
def pg_arms(pg_conninfo, embedder):
    import psycopg

    from lambdas.runtime.rag.pgvector import PgVectorStore

    base = f"t_{uuid.uuid4().hex[:10]}"
    stores = {"minilm": PgVectorStore(pg_conninfo, table=base, dimension=384),
              "projected": PgVectorStore(pg_conninfo, table=f"{base}_projected", dimension=256)}
    for store in stores.values():
        store.ensure_schema()
    arms = {"minilm": (stores["minilm"], embedder), "projected": (stores["projected"], ProjectedMiniLM(embedder, 256))}
    yield arms
    for store in stores.values():
        store.close()
    with psycopg.connect(pg_conninfo, autocommit=True) as conn:
        for store in stores.values():
            conn.execute(f"DROP TABLE IF EXISTS {store.table}")


def dims(store) -> set[int]:
    return set(store._run(lambda conn: [r[0] for r in conn.execute(f"SELECT vector_dims(embedding) FROM {store.table}")]))


@pytest.mark.postgres
def test_ingestion_writes_every_arms_table_with_its_own_model_and_skips_per_index(pg_arms, pg_conninfo, embedder):
    minilm, projected = pg_arms["minilm"][0], pg_arms["projected"][0]
    pipeline = IngestionPipeline(minilm, embedder, TokenChunker(chunk_size=64, chunk_overlap=8), arms=pg_arms)
    first = ingest_all(pipeline)
    assert all(o.status == "indexed" and o.arms == {"minilm": "indexed", "projected": "indexed"} for o in first.values())
    assert minilm.count() == projected.count() > 0
    assert dims(minilm) == {384} and dims(projected) == {256}
    assert minilm.document_ids() == projected.document_ids() == {f"s3://docs/uploads/{n}" for n in DOCS}

    # One index lost a document (a new arm, a failed write): the next delivery fills it and leaves the other alone.
    projected.delete_document("s3://docs/uploads/policy.md")
    again = ingest_all(pipeline)
    assert again["policy.md"].status == "indexed" and again["policy.md"].arms == {"minilm": "unchanged", "projected": "indexed"}
    assert again["warranty.html"].status == "unchanged" and set(again["warranty.html"].arms.values()) == {"unchanged"}
    assert again["policy.md"].embed_seconds > 0 and again["warranty.html"].embed_seconds == 0

    deleted = pipeline.delete("s3://docs/uploads/onboarding.txt")
    assert deleted.status == "deleted" and deleted.arms == {"minilm": "deleted", "projected": "deleted"}
    assert "s3://docs/uploads/onboarding.txt" not in minilm.document_ids() | projected.document_ids()


@pytest.mark.postgres
def test_queries_split_stickily_and_each_arm_searches_its_own_table(pg_arms, embedder):
    minilm, projected = pg_arms["minilm"][0], pg_arms["projected"][0]
    ingest_all(IngestionPipeline(minilm, embedder, TokenChunker(chunk_size=64, chunk_overlap=8), arms=pg_arms))
    projected.delete_document("s3://docs/uploads/warranty.html")  # only the minilm arm can cite the warranty
    experiment = embedding_experiment()
    pipeline = QueryPipeline(minilm, embedder, DefaultPromptSource(), None, experiments=[experiment], embedding_arms=pg_arms)
    seen = {}
    for i in range(40):
        session = f"session-{i}"
        answer = pipeline.answer(QueryRequest("How long is the laptop warranty?", top_k=5, session_id=session))
        arm = assign(session, [("minilm", 50), ("projected", 50)], salt="emb-test")
        assert (answer.experiment, answer.arm, answer.assignments) == ("emb-test", arm, {"emb-test": arm})
        assert answer.embedding_model == experiment.arm(arm).model
        sources = {c.source for c in answer.citations}
        assert ("warranty.html" in " ".join(sources)) == (arm == "minilm")
        seen[arm] = seen.get(arm, 0) + 1
        again = pipeline.answer(QueryRequest("How long is the laptop warranty?", top_k=5, session_id=session))
        assert again.arm == arm  # sticky
        record = record_from_answer("q", answer, record_id="r", time="t")["metadata"]
        assert (record["experiment"], record["arm"], record["embedding_model"]) == ("emb-test", arm, answer.embedding_model)
    assert set(seen) == {"minilm", "projected"}


@pytest.mark.postgres
def test_arm_backends_point_the_runtime_at_each_arms_table(pg_conninfo, aws_env):
    env = {"VECTOR_STORE_BACKEND": "aurora-pgvector", "PG_CONNINFO": pg_conninfo, "PG_TABLE": "rag_chunks",
           "EMBEDDING_PROVIDER": "local", "EMBEDDING_DIMENSION": "384"}
    text = json.dumps([{"name": "emb-test", "kind": "embedding-ab", "winner": None, "arms": [
        {"name": "minilm", "weight": 50, "model": MINILM, "dimension": 384},
        {"name": "bge", "weight": 50, "model": "BAAI/bge-base-en-v1.5", "dimension": 768, "environment": {
            "PG_TABLE": "rag_chunks_bge", "EMBEDDING_DIMENSION": "768", "EMBEDDING_PROVIDER": "sagemaker",
            "EMBEDDING_ENDPOINT_NAME": "llmops-dev-embeddings-bge", "EMBEDDING_MODEL_NAME": "BAAI/bge-base-en-v1.5"}}]}])
    experiment = running_embedding_experiment(parse_experiments(text))
    from lambdas.runtime.rag.embedders import LocalMiniLMEmbedder, SageMakerEmbedder, embedder_from_env

    base_store, base_embedder = store_from_env(env), LocalMiniLMEmbedder()
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    arms = arm_backends(env, experiment, store=base_store, embedder=base_embedder, store_factory=store_from_env,
                        embedder_factory=lambda e: SageMakerEmbedder(e["EMBEDDING_ENDPOINT_NAME"], dimension=int(e["EMBEDDING_DIMENSION"]),
                                                                     client=client, model_name=e.get("EMBEDDING_MODEL_NAME")))
    assert arms["minilm"] == (base_store, base_embedder)
    store, emb = arms["bge"]
    assert (store.table, store.dimension) == ("rag_chunks_bge", 768)
    assert (emb.endpoint_name, emb.dimension, emb.model_name) == ("llmops-dev-embeddings-bge", 768, "BAAI/bge-base-en-v1.5")
    default = embedder_from_env({**env, **experiment.arm("bge").environment})
    assert default.model_name == "BAAI/bge-base-en-v1.5"
    promoted = running_embedding_experiment(parse_experiments(text.replace('"winner": null', '"winner": "bge"')))
    assert promoted is None  # a promoted winner neither splits nor dual-writes


# -- OpenSearch (the capturing test double) ---------------------------------------------------------

def test_opensearch_indexes_per_arm_dual_write_and_split(embedder):
    from botocore.credentials import Credentials

    from lambdas.runtime.rag.opensearch import OpenSearchVectorStore, make_client
    from tests.lambdas.aoss_capture import CaptureServer

    with CaptureServer() as aoss:
        client = make_client(aoss.url, "eu-west-1", credentials=Credentials("AKIDEXAMPLE", "secret", "token"))
        stores = {"minilm": OpenSearchVectorStore(client, "rag-chunks", dimension=384, settle_seconds=0),
                  "projected": OpenSearchVectorStore(client, "rag-chunks-projected", dimension=256, settle_seconds=0)}
        for store in stores.values():
            store.ensure_schema()
        arms = {"minilm": (stores["minilm"], embedder), "projected": (stores["projected"], ProjectedMiniLM(embedder, 256))}
        pipeline = IngestionPipeline(stores["minilm"], embedder, TokenChunker(chunk_size=64, chunk_overlap=8), arms=arms)
        assert {o.status for o in ingest_all(pipeline).values()} == {"indexed"}
        by_index: dict[str, set[int]] = {}
        for doc in aoss.documents.values():
            by_index.setdefault(doc["_index"], set()).add(len(doc["_source"]["vector"]))
        assert sorted(by_index.values(), key=min) == [{256}, {384}] and len(by_index) == 2
        assert {o.status for o in ingest_all(pipeline).values()} == {"unchanged"}  # each index says it holds the version

        stores["projected"].delete_document("s3://docs/uploads/warranty.html")
        pipeline_q = QueryPipeline(stores["minilm"], embedder, DefaultPromptSource(), None,
                                   experiments=[embedding_experiment((30, 70))], embedding_arms=arms)
        for i in range(30):
            answer = pipeline_q.answer(QueryRequest("How long is the laptop warranty?", top_k=5), unit=f"req-{i}")
            arm = assign(f"req-{i}", [("minilm", 30), ("projected", 70)], salt="emb-test")
            assert answer.arm == arm
            assert any("warranty" in c.source for c in answer.citations) == (arm == "minilm")


# -- model A/B: TargetVariant ------------------------------------------------------------------------

def body(payload) -> StreamingBody:
    raw = json.dumps(payload).encode()
    return StreamingBody(BytesIO(raw), len(raw))


class OneChunkStore:
    """A store holding one passage, so each answer calls the LLM once (the vector search is not under test here)."""

    FILTERABLE_FIELDS = frozenset(FILTER_FIELDS)

    def search(self, vector, k, filters=None):
        from lambdas.runtime.rag.model import Chunk, Hit

        return [Hit(Chunk("c1", "doc", "Refunds are paid within five business days.", {"source_key": "policy.md"}), 0.9)]


MODEL_AB = Experiment("llm-test", "model-ab", (Arm("current", 70, variant="blue"), Arm("tuned", 30, variant="green")))


def test_model_ab_sends_the_sticky_target_variant_and_records_the_one_that_answered(embedder):
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    llm = SageMakerLlm("llm-ab", container="tgi", client=client, attempts=1)
    pipeline = QueryPipeline(OneChunkStore(), embedder, DefaultPromptSource(), llm, experiments=[MODEL_AB])
    sessions = [f"user-{i}" for i in range(25)] * 2  # every session twice: the same variant both times
    expected = {s: {"current": "blue", "tuned": "green"}[assign(s, [("current", 70), ("tuned", 30)], salt="llm-test")] for s in sessions}
    with Stubber(client) as stub:
        for session in sessions:
            stub.add_response("invoke_endpoint", {
                "Body": body([{"generated_text": "Within five business days [1].", "details": {"generated_tokens": 7}}]),
                "ContentType": "application/json", "InvokedProductionVariant": expected[session]},
                {"EndpointName": "llm-ab", "ContentType": "application/json", "Accept": "application/json",
                 "Body": ANY, "TargetVariant": expected[session]})
        answers = [pipeline.answer(QueryRequest("When are refunds paid?", session_id=s)) for s in sessions]
        stub.assert_no_pending_responses()
    for session, answer in zip(sessions, answers):
        assert answer.variant == expected[session] and answer.assignments == {"llm-test": answer.arm}
        assert record_from_answer("q", answer, record_id="r", time="t")["metadata"]["variant"] == expected[session]
    assert {a.variant for a in answers} == {"blue", "green"}


def test_model_ab_assignment_matches_the_weights_over_many_callers(embedder):
    # 20,000 seeded caller ids through the pipeline's router: the tuned arm's share is 30% within
    # 4.5 binomial standard deviations (0.0146); the request id stands in when no session_id is given.
    import random

    pipeline = QueryPipeline(OneChunkStore(), embedder, DefaultPromptSource(), None, experiments=[MODEL_AB])
    rng = random.Random(2026)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(20_000)]
    variants = [pipeline.route(unit).target_variant for unit in ids]
    share = variants.count("green") / len(ids)
    assert abs(share - 0.3) <= 4.5 * math.sqrt(0.3 * 0.7 / len(ids))
    assert variants == [pipeline.route(unit).target_variant for unit in ids]


def test_model_shadow_sends_no_target_variant_and_records_the_production_one(embedder):
    shadow = Experiment("llm-shadow", "model-shadow", (Arm("prod", 0, variant="blue"), Arm("new", 0, variant="green", shadow=True)))
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    pipeline = QueryPipeline(OneChunkStore(), embedder, DefaultPromptSource(),
                             SageMakerLlm("llm-ab", container="tgi", client=client, attempts=1), experiments=[shadow])
    with Stubber(client) as stub:
        stub.add_response("invoke_endpoint", {"Body": body([{"generated_text": "ok"}]), "InvokedProductionVariant": "blue"},
                          {"EndpointName": "llm-ab", "ContentType": "application/json", "Accept": "application/json", "Body": ANY})
        answer = pipeline.answer(QueryRequest("When are refunds paid?"), unit="req-1")
    assert (answer.experiment, answer.arm, answer.variant) == ("llm-shadow", "prod", "blue")


def test_prompt_ab_arm_is_named_from_the_rendered_version(embedder):
    prompt_ab = Experiment("prompt-test", "prompt-ab", (Arm("v0", 50, version=0), Arm("v1", 50, version=1)))
    answer = QueryPipeline(OneChunkStore(), embedder, DefaultPromptSource(), None,
                           experiments=[prompt_ab]).answer(QueryRequest("When are refunds paid?"))
    assert (answer.experiment, answer.arm, answer.embedding_model) == ("prompt-test", "v0", MINILM)


@pytest.mark.parametrize("value", ["", "has space", "x" * 257, 42, "tab\tid", "é"])
def test_a_bad_session_id_is_refused(value):
    with pytest.raises(InvalidQuery, match="session_id"):
        parse_request({"question": "q", "session_id": value}, filterable=frozenset(FILTER_FIELDS))


def test_a_session_id_is_kept():
    assert parse_request({"question": "q", "session_id": "user:42@example"}, filterable=frozenset()).session_id == "user:42@example"
