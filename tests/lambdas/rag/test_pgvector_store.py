"""PgVectorStore against the real embedded PostgreSQL + pgvector."""

from __future__ import annotations

import math
import random
import threading

import psycopg
import pytest

from lambdas.runtime.rag.model import Chunk
from lambdas.runtime.rag.pgvector import PgVectorStore
from lambdas.runtime.rag.store import store_from_env

pytestmark = pytest.mark.postgres


def unit(values):
    norm = math.sqrt(sum(v * v for v in values))
    return tuple(v / norm for v in values)


def chunks_for(document_id, count, *, rng, **metadata):
    return [
        Chunk(f"{document_id}-{i}", document_id, f"text {i} of {document_id}",
              {"page": i + 1, "chunk_index": i, **metadata}, unit([rng.gauss(0, 1) for _ in range(384)]))
        for i in range(count)
    ]


def test_schema_has_hnsw_index_and_is_idempotent(store, pg_conninfo):
    store.ensure_schema()
    with psycopg.connect(pg_conninfo) as conn:
        indexes = dict(conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", (store.table,)).fetchall())
    assert "USING hnsw (embedding vector_cosine_ops)" in indexes[f"{store.table}_embedding_idx"]
    assert f"{store.table}_document_idx" in indexes and f"{store.table}_metadata_idx" in indexes


def test_dimension_mismatch_is_refused(store, pg_conninfo):
    with pytest.raises(ValueError, match=r"stores vector\(384\) but EMBEDDING_DIMENSION is 768"):
        PgVectorStore(pg_conninfo, table=store.table, dimension=768).ensure_schema()


def test_upsert_replaces_a_documents_chunks(store):
    rng = random.Random(1)
    assert store.upsert("doc-a", chunks_for("doc-a", 5, rng=rng)) == 5
    assert store.upsert("doc-b", chunks_for("doc-b", 2, rng=rng)) == 2
    assert store.upsert("doc-a", chunks_for("doc-a", 3, rng=rng)) == 3
    assert store.count() == 5
    assert store.document_chunk_ids("doc-a") == {"doc-a-0", "doc-a-1", "doc-a-2"}
    assert store.delete_document("doc-a") == 3
    assert store.delete_document("doc-a") == 0
    assert store.count() == 2


def test_search_orders_by_cosine_similarity_and_returns_metadata(store):
    rng = random.Random(2)
    chunks = chunks_for("doc", 20, rng=rng, language="en")
    store.upsert("doc", chunks)
    target = chunks[7]
    hits = store.search(list(target.vector), 3)
    assert hits[0].chunk.chunk_id == target.chunk_id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].chunk.metadata == target.metadata and hits[0].chunk.text == target.text
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_filters_are_exact_matches(store):
    rng = random.Random(3)
    store.upsert("en-doc", chunks_for("en-doc", 30, rng=rng, language="en"))
    store.upsert("de-doc", chunks_for("de-doc", 30, rng=rng, language="de"))
    query = [rng.gauss(0, 1) for _ in range(384)]
    german = store.search(query, 10, {"language": "de"})
    assert len(german) == 10 and {h.chunk.document_id for h in german} == {"de-doc"}
    page_two = store.search(query, 10, {"page": 2})
    assert {(h.chunk.document_id, h.chunk.metadata["page"]) for h in page_two} == {("en-doc", 2), ("de-doc", 2)}
    assert store.search(query, 5, {"document_id": "en-doc", "language": "de"}) == []


def test_unknown_filter_field_names_the_field(store):
    with pytest.raises(ValueError, match="unknown filter field.*colour"):
        store.search([0.1] * 384, 3, {"colour": "red"})


def test_concurrent_upserts_of_one_document_never_duplicate(store, pg_conninfo):
    rng = random.Random(4)
    versions = [chunks_for("doc", 4, rng=rng) for _ in range(6)]
    errors = []

    def write(chunks):
        own = PgVectorStore(pg_conninfo, table=store.table)
        try:
            own.upsert("doc", chunks)
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=write, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == 4


def test_reconnects_after_the_connection_drops(store, pg_conninfo):
    rng = random.Random(5)
    store.upsert("doc", chunks_for("doc", 2, rng=rng))
    pid = store._connection().info.backend_pid
    with psycopg.connect(pg_conninfo, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert store.count() == 2


def test_store_from_env_picks_pgvector(pg_conninfo):
    chosen = store_from_env({"VECTOR_STORE_BACKEND": "aurora-pgvector", "PG_CONNINFO": pg_conninfo, "PG_TABLE": "rag_env"})
    assert isinstance(chosen, PgVectorStore) and chosen.table == "rag_env"
    with pytest.raises(ValueError, match="VECTOR_STORE_BACKEND='faiss'.*aurora-pgvector"):
        store_from_env({"VECTOR_STORE_BACKEND": "faiss"})


def test_bad_table_name_is_refused():
    with pytest.raises(ValueError, match="PG_TABLE"):
        PgVectorStore("host=127.0.0.1", table="chunks; DROP TABLE x")


def test_a_database_that_does_not_answer_is_store_unavailable_after_one_attempt():
    import socket

    from lambdas.runtime.rag.store import StoreUnavailable

    # A server that accepts TCP connections and never speaks: what a resuming cluster looks like.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    store = store_from_env({"VECTOR_STORE_BACKEND": "aurora-pgvector", "PG_CONNECT_TIMEOUT": "2",
                            "PG_CONNINFO": f"host=127.0.0.1 port={port} dbname=x user=x sslmode=disable"})
    try:
        with pytest.raises(StoreUnavailable, match="within 2 s"):
            store.search([0.1] * 384, 3)
        assert len(accepted) == 1  # never retried: a second wait would overrun the API's limit
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


@pytest.mark.parametrize("value", ["0", "abc", "1000"])
def test_connect_timeout_must_be_sensible(value):
    with pytest.raises(ValueError, match="PG_CONNECT_TIMEOUT"):
        store_from_env({"VECTOR_STORE_BACKEND": "aurora-pgvector", "PG_CONNECT_TIMEOUT": value, "PG_CONNINFO": "x"})
