"""Backfill of a new embedding arm's index: one event per current document (moto S3 and SQS), then the
real ingestion over two pgvector tables fills the empty one and skips the full one as unchanged."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from moto import mock_aws

from lambdas.runtime.rag.backfill import backfill_event, current_objects, queue_backfill
from lambdas.runtime.rag.chunking import TokenChunker
from lambdas.runtime.rag.ingest import IngestionPipeline
from lambdas.runtime.rag.s3_ingest import S3Ingestion, S3ObjectEvent
from tests.lambdas.rag.corpus import ONBOARDING_TXT, POLICY_MD
from tests.lambdas.rag.test_experiment_arms import ProjectedMiniLM

BUCKET = "llmops-dev-data"


@pytest.fixture
def aws(aws_env):
    with mock_aws():
        s3, sqs = boto3.client("s3"), boto3.client("sqs")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=BUCKET, Key="uploads/policy.md", Body=b"old policy")
        s3.put_object(Bucket=BUCKET, Key="uploads/policy.md", Body=POLICY_MD.encode())  # the current version counts
        s3.put_object(Bucket=BUCKET, Key="curated/onboarding.txt", Body=ONBOARDING_TXT.encode())
        s3.put_object(Bucket=BUCKET, Key="uploads/folder/", Body=b"")  # a folder marker: not a document
        s3.put_object(Bucket=BUCKET, Key="uploads/gone.txt", Body=b"deleted since")
        s3.delete_object(Bucket=BUCKET, Key="uploads/gone.txt")  # a delete marker: no current version
        s3.put_object(Bucket=BUCKET, Key="raw/private.txt", Body=b"never ingested")
        queue = sqs.create_queue(QueueName="ingest")["QueueUrl"]
        dlq = sqs.create_queue(QueueName="ingest-dlq")["QueueUrl"]
        yield s3, sqs, queue, dlq


def drain(sqs, queue):
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        bodies += [m["Body"] for m in got]
        for m in got:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])


def test_one_event_per_current_document_in_the_ingestion_event_shape(aws):
    s3, sqs, queue, _ = aws
    assert queue_backfill(s3, sqs, bucket=BUCKET, queue_url=queue) == 2
    events = [S3ObjectEvent.model_validate_json(body) for body in drain(sqs, queue)]
    assert sorted(e.detail.object.key for e in events) == ["curated/onboarding.txt", "uploads/policy.md"]
    current = s3.head_object(Bucket=BUCKET, Key="uploads/policy.md")["VersionId"]
    policy = next(e for e in events if e.detail.object.key == "uploads/policy.md")
    assert policy.detail_type == "Object Created" and policy.detail.object.version_id == current
    assert policy.detail.object.sequencer is None  # never orders itself against real events


def test_more_than_one_batch_is_sent(aws):
    s3, sqs, queue, _ = aws
    for i in range(23):
        s3.put_object(Bucket=BUCKET, Key=f"uploads/many/{i}.txt", Body=b"x")
    assert queue_backfill(s3, sqs, bucket=BUCKET, queue_url=queue) == 25
    assert len(drain(sqs, queue)) == 25


def test_a_refused_message_is_named(aws):
    s3, sqs, _, _ = aws

    class Refusing:
        def send_message_batch(self, QueueUrl, Entries):
            return {"Successful": [], "Failed": [{"Id": "0", "Code": "AccessDenied", "Message": "no", "SenderFault": True}]}

    with pytest.raises(RuntimeError, match="refused by q: AccessDenied: no"):
        queue_backfill(s3, Refusing(), bucket=BUCKET, queue_url="q")


@pytest.mark.postgres
def test_the_backfill_fills_the_new_arms_table_and_skips_the_full_one(aws, pg_conninfo, embedder):
    import psycopg

    from lambdas.runtime.rag.pgvector import PgVectorStore

    s3, sqs, queue, dlq = aws
    base = f"t_{uuid.uuid4().hex[:10]}"
    control = PgVectorStore(pg_conninfo, table=base, dimension=384)
    arm = PgVectorStore(pg_conninfo, table=f"{base}_projected", dimension=256)
    try:
        for store in (control, arm):
            store.ensure_schema()
        chunker = TokenChunker(chunk_size=64, chunk_overlap=8)
        # Before the experiment: the control's table holds every document (one index, one model).
        before = S3Ingestion(IngestionPipeline(control, embedder, chunker), s3=s3, sqs=sqs, dlq_url=dlq)
        for obj in current_objects(s3, BUCKET):
            assert before.handle_message(backfill_event(BUCKET, obj)).status == "indexed"
        held = control.count()
        # The experiment starts: the new arm's table is empty until the backfill.
        both = S3Ingestion(IngestionPipeline(control, embedder, chunker, arms={
            "minilm": (control, embedder), "projected": (arm, ProjectedMiniLM(embedder, 256))}), s3=s3, sqs=sqs, dlq_url=dlq)
        queue_backfill(s3, sqs, bucket=BUCKET, queue_url=queue)
        outcomes = [both.handle_message(body) for body in drain(sqs, queue)]
        assert [o.arms for o in outcomes] == [{"minilm": "unchanged", "projected": "indexed"}] * 2
        assert control.count() == held == arm.count()
        assert arm.document_ids() == {f"s3://{BUCKET}/uploads/policy.md", f"s3://{BUCKET}/curated/onboarding.txt"}
        assert json.loads(json.dumps(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])))[
            "Attributes"]["ApproximateNumberOfMessages"] == "0"
    finally:
        for store in (control, arm):
            store.close()
        with psycopg.connect(pg_conninfo, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {control.table}")
            conn.execute(f"DROP TABLE IF EXISTS {arm.table}")
