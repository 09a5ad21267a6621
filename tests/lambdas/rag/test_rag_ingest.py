"""rag_ingest handler: moto S3/SQS, the real embedding model, a real PostgreSQL + pgvector."""

from __future__ import annotations

import itertools
import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from lambdas.rag_ingest import handler as ingest_handler
from lambdas.runtime.rag.embedders import SageMakerEmbedder
from lambdas.runtime.rag.ingest import IngestionPipeline
from lambdas.runtime.rag.s3_ingest import S3Ingestion, document_id_for
from tests.lambdas.rag.corpus import ONBOARDING_TXT, POLICY_MD, WARRANTY_HTML, curated_json, pdf_bytes
from tests.lambdas.rag.events import LambdaContext, s3_event, sqs_event

pytestmark = pytest.mark.postgres
BUCKET = "llmops-dev-data"
BUILD_INGESTION = ingest_handler.ingestion  # the cached builder; one test swaps it out


@pytest.fixture
def aws(aws_env, monkeypatch, pg_conninfo, store, embedder):
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        sqs = boto3.client("sqs")
        dlq_url = sqs.create_queue(QueueName="rag-ingest-dlq")["QueueUrl"]
        env = {
            "VECTOR_STORE_BACKEND": "aurora-pgvector",
            "PG_CONNINFO": pg_conninfo,
            "PG_TABLE": store.table,
            "EMBEDDING_PROVIDER": "local",
            "EMBEDDING_DIMENSION": "384",
            "CHUNK_SIZE": "64",
            "CHUNK_OVERLAP": "8",
            "DATA_BUCKET": BUCKET,
            "QUARANTINE_PREFIX": "quarantine/",
            "DLQ_URL": dlq_url,
            "MAX_DOCUMENT_BYTES": "20000",
            "POWERTOOLS_SERVICE_NAME": "rag_ingest",
            "POWERTOOLS_METRICS_NAMESPACE": "LLMOps",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        BUILD_INGESTION.cache_clear()
        yield s3, sqs, dlq_url
        BUILD_INGESTION.cache_clear()


# S3 sequencers grow per key with each event; tests draw them in the order the events happened.
_SEQUENCERS = (f"0069{n:014X}" for n in itertools.count(0x1000))


def put(s3, key: str, body: bytes) -> dict:
    version = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["VersionId"]
    return s3_event("Object Created", BUCKET, key, version_id=version, size=len(body), sequencer=next(_SEQUENCERS))


def delete_marker(s3, key: str) -> dict:
    marker = s3.delete_object(Bucket=BUCKET, Key=key)["VersionId"]
    return s3_event("Object Deleted", BUCKET, key, version_id=marker, sequencer=next(_SEQUENCERS),
                    deletion_type="Delete Marker Created")


def delete_version(s3, key: str, version: str, *, reason: str = "DeleteObject") -> dict:
    s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version)
    return s3_event("Object Deleted", BUCKET, key, version_id=version, sequencer=next(_SEQUENCERS),
                    deletion_type="Permanently Deleted", reason=reason)


def version_of(event: dict) -> str:
    return event["detail"]["object"]["version-id"]


def indexed_text(store, key: str) -> str:
    hits = store.search([0.0] * 383 + [1.0], 50, {"document_id": document_id_for(BUCKET, key)})
    return " ".join(h.chunk.text for h in hits)


def run(*events: dict | str) -> dict:
    bodies = [e if isinstance(e, str) else json.dumps(e) for e in events]
    return ingest_handler.handler(sqs_event(*bodies), LambdaContext())


def dead_letters(sqs, dlq_url) -> dict[str, str]:
    messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return {
        json.loads(m["Body"]).get("detail", {}).get("object", {}).get("key", "<unparsed>")
        if m["Body"].startswith("{") else "<unparsed>": m["MessageAttributes"]["reason"]["StringValue"]
        for m in messages.get("Messages", [])
    }


def test_good_documents_indexed_bad_ones_quarantined_and_dead_lettered(aws, store):
    s3, sqs, dlq_url = aws
    events = [
        put(s3, "uploads/policy.md", POLICY_MD.encode()),
        put(s3, "uploads/warranty.html", WARRANTY_HTML.encode()),
        put(s3, "uploads/invoice.pdf", pdf_bytes(["Invoices are due within 45 days.", "Late fees are 2 percent."])),
        put(s3, "curated/c1.curated.json", curated_json("c1", ["The lease ends in March 2027."], source_key="raw/lease.pdf")),
        put(s3, "uploads/empty.txt", b""),
        put(s3, "uploads/binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00"),
        put(s3, "uploads/broken.pdf", b"%PDF-1.7 truncated"),
        put(s3, "uploads/huge.txt", b"word " * 5000),
        put(s3, "uploads/deck.pptx", b"PK\x03\x04"),
        "this is not an event",
    ]
    response = run(*events)
    assert response == {"batchItemFailures": []}

    assert dead_letters(sqs, dlq_url) == {
        "uploads/empty.txt": "empty",
        "uploads/binary.txt": "binary",
        "uploads/broken.pdf": "corrupt",
        "uploads/huge.txt": "oversized",
        "uploads/deck.pptx": "unsupported-type",
        "<unparsed>": "invalid-event",
    }
    reason = json.loads(s3.get_object(Bucket=BUCKET, Key="quarantine/uploads/broken.pdf.reason.json")["Body"].read())
    assert reason["reason"] == "corrupt" and reason["key"] == "uploads/broken.pdf" and "corrupt PDF" in reason["message"]
    assert s3.get_object(Bucket=BUCKET, Key="quarantine/uploads/broken.pdf")["Body"].read() == b"%PDF-1.7 truncated"

    indexed = store.document_ids()
    assert indexed == {document_id_for(BUCKET, k) for k in
                       ("uploads/policy.md", "uploads/warranty.html", "uploads/invoice.pdf", "curated/c1.curated.json")}
    invoice = store.search(ingest_handler.ingestion().pipeline.embedder.embed_query("when are late fees charged?"), 1,
                           {"document_id": document_id_for(BUCKET, "uploads/invoice.pdf")})[0].chunk
    assert invoice.metadata["page"] == 2 and invoice.metadata["source_key"] == "uploads/invoice.pdf"
    assert invoice.metadata["source_bucket"] == BUCKET and invoice.metadata["source_version"]
    lease = store.search([0.0] * 383 + [1.0], 1, {"document_id": document_id_for(BUCKET, "curated/c1.curated.json")})[0].chunk
    assert (lease.metadata["source_bucket"], lease.metadata["source_key"]) == ("raw-bucket", "raw/lease.pdf")
    assert lease.metadata["language"] == "en"


def test_reingest_never_duplicates_and_delete_removes(aws, store):
    s3, sqs, dlq_url = aws
    event = put(s3, "uploads/onboarding.txt", ONBOARDING_TXT.encode())
    run(event)
    first = store.count()
    assert first > 0
    run(event, event)  # SQS at-least-once delivery: the same event twice more
    assert store.count() == first
    updated = put(s3, "uploads/onboarding.txt", (ONBOARDING_TXT + "\nParking permits are issued by facilities.").encode())
    run(updated)
    doc_id = document_id_for(BUCKET, "uploads/onboarding.txt")
    texts = " ".join(h.chunk.text for h in store.search([0.0] * 383 + [1.0], 20, {"document_id": doc_id}))
    assert "Parking permits" in texts
    run(delete_marker(s3, "uploads/onboarding.txt"))
    assert store.count() == 0


def test_a_bad_new_version_keeps_the_indexed_one(aws, store):
    s3, sqs, dlq_url = aws
    run(put(s3, "uploads/policy.md", POLICY_MD.encode()))
    before = store.document_chunk_ids(document_id_for(BUCKET, "uploads/policy.md"))
    run(put(s3, "uploads/policy.md", b"\x00\x01binary garbage"))
    assert store.document_chunk_ids(document_id_for(BUCKET, "uploads/policy.md")) == before
    assert dead_letters(sqs, dlq_url) == {"uploads/policy.md": "binary"}


def test_throttled_embedding_is_retried_then_reported_as_a_batch_failure(aws, store, monkeypatch):
    s3, sqs, dlq_url = aws
    runtime = boto3.client("sagemaker-runtime")
    stub = Stubber(runtime)
    for _ in range(3):
        stub.add_client_error("invoke_endpoint", service_error_code="ThrottlingException",
                              service_message="Rate exceeded", http_status_code=400)
    stub.activate()
    sleeps = []
    embedder = SageMakerEmbedder("embedder", dimension=384, client=runtime, sleep=sleeps.append, attempts=3)
    ingestion = S3Ingestion(IngestionPipeline(store, embedder), s3=s3, sqs=sqs, dlq_url=dlq_url)
    monkeypatch.setattr(ingest_handler, "ingestion", lambda: ingestion)
    ok = put(s3, "uploads/missing-type.pptx", b"PK")  # skipped without calling the model
    throttled = put(s3, "uploads/policy.md", POLICY_MD.encode())
    response = run(ok, throttled)
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert len(sleeps) == 2 and all(s >= 0 for s in sleeps)
    stub.assert_no_pending_responses()
    assert store.count() == 0


def test_url_encoded_keys_are_read(aws, store):
    s3, sqs, dlq_url = aws
    s3.put_object(Bucket=BUCKET, Key="uploads/red flower.md", Body=POLICY_MD.encode())
    assert run(s3_event("Object Created", BUCKET, "uploads/red+flower.md")) == {"batchItemFailures": []}
    assert store.count() > 0 and dead_letters(sqs, dlq_url) == {}


# -- event semantics (docs/rag.md, "Event semantics") ------------------------------------------


def test_lifecycle_expiry_of_a_noncurrent_version_keeps_the_current_document(aws, store):
    s3, sqs, dlq_url = aws
    first = put(s3, "uploads/policy.md", POLICY_MD.encode())
    run(first)
    second = put(s3, "uploads/policy.md", (POLICY_MD + "\nRemote work needs manager approval.").encode())
    run(second)
    held = store.document_chunk_ids(document_id_for(BUCKET, "uploads/policy.md"))
    # 90 days later the bucket's lifecycle rule expires the noncurrent first version.
    expiry = delete_version(s3, "uploads/policy.md", version_of(first), reason="Lifecycle Expiration")
    assert run(expiry) == {"batchItemFailures": []}
    assert store.document_chunk_ids(document_id_for(BUCKET, "uploads/policy.md")) == held
    assert "Remote work" in indexed_text(store, "uploads/policy.md")
    assert dead_letters(sqs, dlq_url) == {}


def test_permanent_delete_of_the_current_version_indexes_the_version_now_current(aws, store):
    s3, sqs, dlq_url = aws
    first = put(s3, "uploads/policy.md", POLICY_MD.encode())
    second = put(s3, "uploads/policy.md", (POLICY_MD + "\nRemote work needs manager approval.").encode())
    run(first, second)
    assert "Remote work" in indexed_text(store, "uploads/policy.md")
    run(delete_version(s3, "uploads/policy.md", version_of(second)))
    assert "Remote work" not in indexed_text(store, "uploads/policy.md") and store.count() > 0
    state = store.document_state(document_id_for(BUCKET, "uploads/policy.md"))
    assert state.version == version_of(first)
    run(delete_version(s3, "uploads/policy.md", version_of(first)))  # the last version: nothing is left
    assert store.count() == 0


def test_out_of_order_events_never_put_an_older_version_back(aws, store):
    s3, sqs, dlq_url = aws
    old = put(s3, "uploads/policy.md", POLICY_MD.encode())
    new = put(s3, "uploads/policy.md", (POLICY_MD + "\nRemote work needs manager approval.").encode())
    assert run(new, old) == {"batchItemFailures": []}  # the SQS standard queue delivered them reversed
    assert "Remote work" in indexed_text(store, "uploads/policy.md")
    # A delete marker, then a re-upload, delivered reversed: the document stays.
    marker = delete_marker(s3, "uploads/policy.md")
    again = put(s3, "uploads/policy.md", ONBOARDING_TXT.encode())
    run(again, marker)
    assert "badge" in indexed_text(store, "uploads/policy.md").lower()
    assert dead_letters(sqs, dlq_url) == {}


def test_a_write_older_than_the_stored_one_is_refused_by_the_store(aws, store, embedder):
    from lambdas.runtime.rag.store import Superseded

    s3, sqs, dlq_url = aws
    event = put(s3, "uploads/policy.md", POLICY_MD.encode())
    run(event)
    doc_id = document_id_for(BUCKET, "uploads/policy.md")
    held = store.document_state(doc_id)
    assert held.sequencer == event["detail"]["object"]["sequencer"]
    older = "0069" + "0" * 13 + "1"
    with pytest.raises(Superseded):
        store.delete_document(doc_id, sequencer=older)
    pipeline = ingest_handler.ingestion().pipeline
    from lambdas.runtime.rag.loaders import SourceRef

    outcome = pipeline.ingest_bytes(doc_id, "policy.md", b"# Other\n\nOther text.", SourceRef(BUCKET, "uploads/policy.md", "v0", older))
    assert outcome.status == "superseded" and store.document_state(doc_id) == held


def test_created_event_for_a_vanished_version_is_skipped_not_dead_lettered(aws, store):
    s3, sqs, dlq_url = aws
    event = put(s3, "uploads/policy.md", POLICY_MD.encode())
    s3.delete_object(Bucket=BUCKET, Key="uploads/policy.md", VersionId=version_of(event))
    assert run(event) == {"batchItemFailures": []}
    assert store.count() == 0 and dead_letters(sqs, dlq_url) == {}


def test_folder_markers_are_ignored(aws, store):
    s3, sqs, dlq_url = aws
    marker = put(s3, "uploads/", b"")
    assert run(marker, s3_event("Object Deleted", BUCKET, "uploads/reports/")) == {"batchItemFailures": []}
    assert dead_letters(sqs, dlq_url) == {}
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="quarantine/")


def test_redelivered_batch_does_not_embed_again(aws, store, monkeypatch):
    s3, sqs, dlq_url = aws
    events = [put(s3, "uploads/policy.md", POLICY_MD.encode()), put(s3, "uploads/onboarding.txt", ONBOARDING_TXT.encode())]
    run(*events)
    embedder = ingest_handler.ingestion().pipeline.embedder
    calls = []
    monkeypatch.setattr(embedder, "embed_documents", lambda texts: calls.append(texts) or [])
    assert run(*events) == {"batchItemFailures": []}  # a timed-out batch comes back whole
    assert calls == []


@pytest.mark.parametrize(("key", "body", "names"), [
    ("uploads/scan.textract.json", json.dumps({"Blocks": [{"BlockType": "LINE", "Page": "abc", "Text": "x"}]}), "Page"),
    ("uploads/scan2.textract.json", json.dumps({"Blocks": [{"BlockType": "LINE", "Page": None, "Text": "x"}]}), "Page"),
    ("curated/a.curated.json", json.dumps({"schema": "llmops.curated-document/v1", "pages": [{"page": 1, "text": "t"}],
                                           "metadata": ["en"]}), "metadata"),
    ("curated/b.curated.json", json.dumps({"schema": "llmops.curated-document/v1", "pages": [{"page": 1, "text": {"x": 1}}]}),
     "pages.0.text"),
    ("uploads/deep.textract.json", "[" * 9_000 + "]" * 9_000, "nested too deeply"),
])
def test_malformed_json_documents_are_quarantined_with_a_reason_and_the_batch_goes_on(aws, store, key, body, names):
    s3, sqs, dlq_url = aws
    bad = put(s3, key, body.encode())
    good = put(s3, "uploads/policy.md", POLICY_MD.encode())
    assert run(bad, good) == {"batchItemFailures": []}
    assert dead_letters(sqs, dlq_url) == {key: "corrupt"}
    reason = json.loads(s3.get_object(Bucket=BUCKET, Key=f"quarantine/{key}.reason.json")["Body"].read())
    assert names in reason["message"]
    assert store.document_ids() == {document_id_for(BUCKET, "uploads/policy.md")}


def test_vectors_are_held_as_float32_arrays_while_a_document_is_written(store, embedder):
    from array import array

    from lambdas.runtime.rag.loaders import SourceRef

    written = []

    class Recording(type(store)):
        def upsert(self, document_id, chunks, *, sequencer=None):
            written.extend(chunks)
            return super().upsert(document_id, chunks, sequencer=sequencer)

    recording = Recording.__new__(Recording)
    recording.__dict__.update(store.__dict__)
    IngestionPipeline(recording, embedder).ingest_bytes("d", "policy.md", POLICY_MD.encode(), SourceRef(None, "policy.md"))
    assert written and all(isinstance(c.vector, array) and c.vector.typecode == "f" for c in written)
    assert store.count() == len(written)  # and they reach the database intact
