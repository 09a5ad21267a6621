"""OpenSearchVectorStore at the request level: mapping, bulk bodies, kNN query, SigV4 ``aoss`` signing.

Requests go through the real opensearch-py client and signer to a capturing server on
127.0.0.1 that holds the documents written and answers searches over them, with a refresh window
when asked (``tests/lambdas/aoss_capture.py``).
"""

from __future__ import annotations

import hashlib
import re

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.runtime.rag.model import Chunk
from lambdas.runtime.rag.opensearch import (
    FILTERABLE_FIELDS,
    IndexMappingConflict,
    OpenSearchVectorStore,
    concrete_index_name,
    fold_hits,
    ensure_index,
    index_body,
    make_client,
)
from lambdas.runtime.rag.store import store_from_env
from tests.lambdas.aoss_capture import CaptureServer

CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-example")
REGION = "eu-west-1"
DIM = 4


def chunk(i: int, doc: str = "doc-1", **meta) -> Chunk:
    metadata = {"source_bucket": "b", "source_key": f"uploads/{doc}.txt", "source_version": None, "page": 1,
                "start_offset": i * 10, "end_offset": i * 10 + 9, "chunk_index": i, "content_hash": f"h{i}", **meta}
    return Chunk(chunk_id=f"{doc}:{i}:h{i}", document_id=doc, text=f"text {i}", metadata=metadata,
                 vector=tuple(float(i + j) / 10 for j in range(DIM)))


@pytest.fixture()
def aoss():
    with CaptureServer() as state:
        yield state


@pytest.fixture()
def store(aoss):
    client = make_client(aoss.url, REGION, credentials=CREDS)
    return OpenSearchVectorStore(client, "rag-chunks", dimension=DIM, space="cosinesimil", settle_seconds=0)


def test_index_body_is_faiss_hnsw_knn_vector_with_filterable_metadata():
    body = index_body(384, "innerproduct")
    assert body["settings"]["index"]["knn"] is True
    vector = body["mappings"]["properties"]["vector"]
    assert vector == {
        "type": "knn_vector",
        "dimension": 384,
        "method": {"name": "hnsw", "engine": "faiss", "space_type": "innerproduct",
                   "parameters": {"m": 16, "ef_construction": 128}},
    }
    props = body["mappings"]["properties"]
    assert props["document_id"] == {"type": "keyword"} and props["chunk_id"] == {"type": "keyword"}
    meta = props["metadata"]["properties"]
    assert meta["page"] == {"type": "integer"} and "tenant" not in meta
    # Every filterable field is indexed (else a filter would silently match nothing).
    for name in FILTERABLE_FIELDS - {"document_id"}:
        assert name in meta


@pytest.mark.parametrize("dimension,space,message", [(1, "l2", "dimension"), (16001, "l2", "dimension"),
                                                      (384, "cosine", "space"), (True, "l2", "dimension")])
def test_index_body_rejects_bad_dimension_or_space(dimension, space, message):
    with pytest.raises(ValueError, match=message):
        index_body(dimension, space)


def test_mapping_change_names_a_new_index():
    a, b = index_body(384), index_body(768)
    assert concrete_index_name("rag", a) == concrete_index_name("rag", index_body(384))
    assert concrete_index_name("rag", a) != concrete_index_name("rag", b)
    assert re.fullmatch(r"rag-[0-9a-f]{12}", concrete_index_name("rag", a))


def test_requests_are_sigv4_signed_for_aoss(aoss, store):
    store.upsert("doc-1", [chunk(0)])
    bulk = aoss.of("POST", "/_bulk")[0]
    auth = bulk.headers["authorization"]
    date = bulk.headers["x-amz-date"][:8]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{date}/{REGION}/aoss/aws4_request, SignedHeaders=")
    signed = re.search(r"SignedHeaders=([^,]+)", auth).group(1).split(";")
    assert {"host", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token"} <= set(signed)
    assert bulk.headers["x-amz-content-sha256"] == hashlib.sha256(bulk.body).hexdigest()
    assert bulk.headers["x-amz-security-token"] == "session-token-example"

    # Recompute the signature from what arrived on the wire: it must match exactly.
    request = AWSRequest(method="POST", url=f"{aoss.url}/_bulk", data=bulk.body,
                         headers={h: bulk.headers[h] for h in signed})
    request.context["timestamp"] = bulk.headers["x-amz-date"]
    signer = SigV4Auth(CREDS, "aoss", REGION)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    assert auth.endswith(f"Signature={expected}")
    # A signature for the "es" service would not be accepted by AOSS.
    other = SigV4Auth(CREDS, "es", REGION)
    assert other.signature(other.string_to_sign(request, other.canonical_request(request)), request) != expected


def test_upsert_looks_up_the_documents_chunks_then_bulk_indexes_without_ids(aoss, store):
    written = store.upsert("doc-1", [chunk(0), chunk(1, language="en")])
    assert written == 2
    lookup = aoss.of("POST", "/rag-chunks/_search")[0].json()
    assert lookup["query"] == {"term": {"document_id": "doc-1"}}
    assert lookup["sort"] == [{"chunk_id": "asc"}, {"generation": "asc"}] and lookup["size"] == 1_000
    lines = aoss.of("POST", "/_bulk")[0].ndjson()
    assert lines[0] == {"index": {"_index": "rag-chunks"}}  # no _id: VECTORSEARCH assigns ids
    doc = lines[1]
    assert doc["chunk_id"] == "doc-1:0:h0" and doc["document_id"] == "doc-1"
    assert doc["vector"] == [0.0, 0.1, 0.2, 0.3]
    assert doc["metadata"]["source_key"] == "uploads/doc-1.txt" and doc["metadata"]["page"] == 1
    assert lines[3]["metadata"]["language"] == "en"
    assert len(lines) == 4


def test_bulk_body_indexes_new_chunks_before_deleting_old_ids(store):
    lines = store.bulk_body([chunk(0)], ["old-a", "old-b"])
    assert lines[0] == {"index": {"_index": "rag-chunks"}} and lines[1]["chunk_id"] == "doc-1:0:h0"
    assert lines[2] == {"delete": {"_index": "rag-chunks", "_id": "old-a"}}
    assert lines[3] == {"delete": {"_index": "rag-chunks", "_id": "old-b"}}


def test_large_documents_are_split_into_several_bulk_requests(aoss, store):
    store.upsert("doc-1", [chunk(i) for i in range(450)])
    bulks = aoss.of("POST", "/_bulk")
    assert [len(b.ndjson()) // 2 for b in bulks] == [200, 200, 50]


def test_delete_of_a_document_with_no_chunks_sends_no_bulk(aoss, store):
    assert store.delete_document("doc-1") == 0
    assert aoss.of("POST", "/_bulk") == []


def test_upsert_rejects_missing_or_wrong_size_vectors_and_foreign_chunks(aoss, store):
    bare = Chunk(chunk_id="c", document_id="doc-1", text="t", metadata={})
    with pytest.raises(ValueError, match="no vector"):
        store.upsert("doc-1", [bare])
    with pytest.raises(ValueError, match="3 dimensions"):
        store.upsert("doc-1", [Chunk("c", "doc-1", "t", {}, (1.0, 2.0, 3.0))])
    with pytest.raises(ValueError, match="belongs to 'doc-2'"):
        store.upsert("doc-1", [chunk(0, doc="doc-2")])
    assert aoss.of("POST", "/_bulk") == []


def test_knn_query_body_with_filters(aoss, store):
    assert store.search([0.1, 0.2, 0.3, 0.4], 3, {"language": "en", "page": 2, "document_id": "doc-1"}) == []
    body = aoss.of("POST", "/rag-chunks/_search")[0].json()
    assert body == {
        "size": 6,
        "_source": {"excludes": ["vector"]},
        "query": {"knn": {"vector": {
            "vector": [0.1, 0.2, 0.3, 0.4],
            "k": 6,
            "filter": {"bool": {"filter": [
                {"term": {"document_id": "doc-1"}},
                {"term": {"metadata.language": "en"}},
                {"term": {"metadata.page": 2}},
            ]}},
        }}},
    }


def test_knn_query_without_filters_has_no_filter_clause(store):
    body = store.search_body([0.0] * DIM, 5)
    assert "filter" not in body["query"]["knn"]["vector"]


def test_unknown_filter_field_is_named(aoss, store):
    with pytest.raises(ValueError, match="colour"):
        store.search([0.0] * DIM, 3, {"colour": "red"})
    assert aoss.requests == []


@settings(max_examples=50, deadline=None)
@given(st.one_of(st.integers(max_value=0), st.integers(min_value=101), st.booleans()))
def test_k_out_of_range_is_rejected(k):
    store = OpenSearchVectorStore(None, "a", dimension=DIM)
    with pytest.raises(ValueError, match="k must be"):
        store.search_body([0.0] * DIM, k)


def test_ensure_schema_creates_versioned_index_and_alias(aoss, store):
    store.ensure_schema()
    name = concrete_index_name("rag-chunks", index_body(DIM))
    assert aoss.of("PUT", f"/{name}")[0].json() == index_body(DIM)
    assert aoss.of("POST", "/_aliases")[0].json() == {"actions": [{"add": {"index": name, "alias": "rag-chunks"}}]}
    # Second call: alias exists, only the live mapping's dimension is checked.
    before = len(aoss.requests)
    store.ensure_schema()
    assert [r.method for r in aoss.requests[before:]] == ["GET", "GET"]


def test_ensure_schema_refuses_an_index_of_another_dimension(aoss):
    client = make_client(aoss.url, REGION, credentials=CREDS)
    ensure_index(client, "rag-chunks", index_body(8))
    with pytest.raises(IndexMappingConflict, match="dimension 8.*EMBEDDING_DIMENSION is 4"):
        OpenSearchVectorStore(client, "rag-chunks", dimension=DIM).ensure_schema()


def test_ensure_index_moves_the_alias_on_mapping_change(aoss):
    client = make_client(aoss.url, REGION, credentials=CREDS)
    first = ensure_index(client, "rag-chunks", index_body(DIM))
    assert first.created and not first.moved
    again = ensure_index(client, "rag-chunks", index_body(DIM))
    assert not again.created and not again.moved
    second = ensure_index(client, "rag-chunks", index_body(DIM, "l2"))
    assert second.created and second.previous == (first.index,)
    swap = aoss.of("POST", "/_aliases")[-1].json()
    assert swap == {"actions": [{"remove": {"index": first.index, "alias": "rag-chunks"}},
                                {"add": {"index": second.index, "alias": "rag-chunks"}}]}
    assert first.index in aoss.indexes  # the old index is left for the caller to retire


def test_ensure_index_refuses_a_concrete_index_under_the_alias_name(aoss):
    client = make_client(aoss.url, REGION, credentials=CREDS)
    client.indices.create(index="rag-chunks", body={})
    with pytest.raises(IndexMappingConflict, match="concrete index"):
        ensure_index(client, "rag-chunks", index_body(DIM))


def test_from_env_builds_the_store_through_store_from_env(aoss):
    env = {"VECTOR_STORE_BACKEND": "opensearch-serverless", "AOSS_ENDPOINT": aoss.url, "AOSS_INDEX": "rag-chunks",
           "EMBEDDING_DIMENSION": "4", "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "x"}
    import os

    old = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update({k: env[k] for k in old})
    try:
        store = store_from_env(env)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert isinstance(store, OpenSearchVectorStore)
    assert store.alias == "rag-chunks" and store.dimension == 4
    store.search([0.0] * 4, 1)
    assert "/aoss/aws4_request" in aoss.requests[-1].headers["authorization"]


@pytest.mark.parametrize("missing", ["AOSS_ENDPOINT", "AOSS_INDEX", "EMBEDDING_DIMENSION"])
def test_from_env_names_missing_variables(missing):
    env = {"AOSS_ENDPOINT": "https://x.eu-west-1.aoss.amazonaws.com", "AOSS_INDEX": "a", "EMBEDDING_DIMENSION": "4",
           "AWS_REGION": REGION}
    env.pop(missing)
    with pytest.raises(ValueError, match=missing):
        OpenSearchVectorStore.from_env(env, credentials=CREDS)


def test_from_env_rejects_non_https_scheme():
    env = {"AOSS_ENDPOINT": "ftp://x", "AOSS_INDEX": "a", "EMBEDDING_DIMENSION": "4", "AWS_REGION": REGION}
    with pytest.raises(ValueError, match="https URL"):
        OpenSearchVectorStore.from_env(env, credentials=CREDS)


def _raw(chunk_id, doc, generation, score):
    return {"_index": "rag-chunks-x", "_id": f"srv-{chunk_id}-{generation}", "_score": score,
            "_source": {"chunk_id": chunk_id, "document_id": doc, "generation": generation, "text": chunk_id, "metadata": {"page": 1}}}


def test_fold_hits_drops_superseded_generations_and_repeated_chunks():
    # Hit lists as a search would return them within the refresh window after two upserts of doc-a.
    raw = [_raw("a:0", "doc-a", 1, 0.9), _raw("a:0", "doc-a", 2, 0.89), _raw("b:0", "doc-b", 5, 0.8),
           _raw("a:1-old", "doc-a", 1, 0.7), _raw("a:1", "doc-a", 2, 0.6), _raw("b:0", "doc-b", 5, 0.5)]
    hits = fold_hits(raw, 10)
    assert [(h.chunk.chunk_id, h.score) for h in hits] == [("a:0", 0.89), ("b:0", 0.8), ("a:1", 0.6)]
    assert [h.chunk.chunk_id for h in fold_hits(raw, 2)] == ["a:0", "b:0"]


def test_each_upsert_stamps_one_generation_on_all_its_chunks(aoss, store):
    store.upsert("doc-1", [chunk(0), chunk(1)])
    store.upsert("doc-1", [chunk(0)])
    first, second = (b.ndjson() for b in aoss.of("POST", "/_bulk"))
    assert first[1]["generation"] == first[3]["generation"] > 0
    assert second[1]["generation"] > first[1]["generation"]


# -- with documents held by the test double --------------------------------------------------


def test_replace_deletes_the_previous_chunks_by_their_server_ids(aoss, store):
    store.upsert("doc-1", [chunk(0), chunk(1), chunk(2)])
    first_ids = set(aoss.documents)
    store.upsert("doc-1", [chunk(5)])
    assert [s["chunk_id"] for s in aoss.sources(document_id="doc-1")] == ["doc-1:5:h5"]
    deletes = [line["delete"]["_id"] for line in aoss.of("POST", "/_bulk")[-1].ndjson() if "delete" in line]
    assert set(deletes) == first_ids
    hits = store.search([0.5, 0.6, 0.7, 0.8], 3)
    assert [h.chunk.chunk_id for h in hits] == ["doc-1:5:h5"]


def test_documents_of_more_than_ten_thousand_chunks_are_listed_page_by_page_and_deleted(aoss, store):
    store.upsert("big", [chunk(i, doc="big") for i in range(10_250)])
    store.upsert("other", [chunk(0, doc="other")])
    assert len(store.existing_ids("big")) == 10_250
    pages = [r.json() for r in aoss.of("POST", "/rag-chunks/_search") if r.json().get("search_after")]
    assert len(pages) >= 10
    assert store.delete_document("big") == 10_250
    assert aoss.sources(document_id="big") == [] and len(aoss.sources(document_id="other")) == 1


def test_delete_inside_the_refresh_window_converges(aoss):
    client = make_client(aoss.url, REGION, credentials=CREDS)
    waits = []

    def wait(seconds):  # the refresh window passes while the store waits
        waits.append(seconds)
        aoss.refresh()

    store = OpenSearchVectorStore(client, "rag-chunks", dimension=DIM, settle_seconds=7.5, sleep=wait)
    aoss.refresh_lag = True
    store.upsert("doc-1", [chunk(0), chunk(1)])  # written, not yet searchable
    assert store.existing_ids("doc-1") == []
    assert store.delete_document("doc-1") == 2
    assert aoss.sources(document_id="doc-1") == [] and waits[0] == 7.5


def test_delete_that_never_converges_raises_for_redelivery(aoss):
    client = make_client(aoss.url, REGION, credentials=CREDS)
    store = OpenSearchVectorStore(client, "rag-chunks", dimension=DIM, settle_seconds=1, sleep=lambda s: None)
    store.upsert("doc-1", [chunk(0)])
    aoss.refresh_lag = True  # deletions never become visible: every listing still shows the chunk
    with pytest.raises(RuntimeError, match="still listed"):
        store.delete_document("doc-1")


def test_document_state_reports_the_newest_generation_and_leftovers(aoss, store):
    from lambdas.runtime.rag.model import INDEXED_SEQUENCER, INDEXED_VERSION

    store.upsert("doc-1", [chunk(0, **{INDEXED_VERSION: "v1", INDEXED_SEQUENCER: "0A"})])
    state = store.document_state("doc-1")
    assert state.chunk_ids == {"doc-1:0:h0"} and (state.version, state.sequencer) == ("v1", "0A")
    # A write the next listing missed (refresh window) leaves an older generation behind.
    aoss.refresh_lag = True
    store.upsert("doc-1", [chunk(1, **{INDEXED_VERSION: "v2", INDEXED_SEQUENCER: "0B"})])
    aoss.refresh()
    assert len(aoss.sources(document_id="doc-1")) == 1  # the first write's chunk was visible, so deleted
    assert store.document_state("doc-1").version == "v2"
    assert store.document_state("missing") is None


def test_an_older_event_never_overwrites_or_deletes_a_newer_write(aoss, store):
    from lambdas.runtime.rag.model import INDEXED_SEQUENCER
    from lambdas.runtime.rag.store import Superseded

    store.upsert("doc-1", [chunk(0, **{INDEXED_SEQUENCER: "00617F0829932D1A9F"})], sequencer="00617F0829932D1A9F")
    with pytest.raises(Superseded):
        store.upsert("doc-1", [chunk(1)], sequencer="00617F08299329D189")
    with pytest.raises(Superseded):
        store.delete_document("doc-1", sequencer="00617F08299329D189")
    assert [s["chunk_id"] for s in aoss.sources(document_id="doc-1")] == ["doc-1:0:h0"]
    assert store.delete_document("doc-1", sequencer="00617F0829932D1B00") == 1


def test_knn_search_returns_stored_chunks_matching_the_filters(aoss, store):
    store.upsert("doc-1", [chunk(0, language="en"), chunk(1, language="de", page=2)])
    hits = store.search([0.1, 0.2, 0.3, 0.4], 5, {"page": 2})
    assert [h.chunk.chunk_id for h in hits] == ["doc-1:1:h1"] and hits[0].chunk.metadata["language"] == "de"
    assert "vector" not in aoss.of("POST", "/rag-chunks/_search")[-1].json()["_source"].get("includes", [])


def test_reingesting_an_unchanged_document_writes_nothing(aoss, embedder):
    from lambdas.runtime.rag.ingest import IngestionPipeline
    from lambdas.runtime.rag.loaders import SourceRef

    store = OpenSearchVectorStore(make_client(aoss.url, REGION, credentials=CREDS), "rag-chunks", dimension=384,
                                  settle_seconds=0)
    pipeline = IngestionPipeline(store, embedder)
    source = SourceRef("b", "uploads/a.md", "v1", "0A")
    text = ("# Refunds\n\nCustomers may ask for a refund within 30 days. " * 20).encode()
    assert pipeline.ingest_bytes("doc-a", "a.md", text, source).status == "indexed"
    bulks = len(aoss.of("POST", "/_bulk"))
    assert pipeline.ingest_bytes("doc-a", "a.md", text, source).status == "unchanged"
    assert len(aoss.of("POST", "/_bulk")) == bulks
    # A new version with the same text is written again, so the index names the version S3 holds.
    assert pipeline.ingest_bytes("doc-a", "a.md", text, SourceRef("b", "uploads/a.md", "v2", "0B")).status == "indexed"
    assert store.document_state("doc-a").version == "v2"
