"""RAG ingestion Lambda: SQS batches of EventBridge S3 events -> the shared ingestion pipeline.

Partial batch failures: a message that fails for a transient reason (throttling, database) is
reported back to SQS for redelivery; a document that can never be indexed is quarantined and
dead-lettered with its reason by ``S3Ingestion`` and counts as handled.
"""

from __future__ import annotations

import os
from functools import lru_cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lambdas.runtime.experiments.assignment import experiments_from_env
from lambdas.runtime.rag.arms import arm_backends, running_embedding_experiment
from lambdas.runtime.rag.chunking import TokenChunker
from lambdas.runtime.rag.embedders import embedder_from_env
from lambdas.runtime.rag.ingest import IngestionPipeline, IngestOutcome
from lambdas.runtime.rag.loaders import DEFAULT_MAX_DOCUMENT_BYTES
from lambdas.runtime.rag.retry import UpstreamThrottled
from lambdas.runtime.rag.s3_ingest import S3Ingestion, Skipped
from lambdas.runtime.rag.store import store_from_env

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
# Skips that are normal S3 life, not problems: no warning, no DocumentsSkipped metric.
QUIET_SKIPS = frozenset({"folder-marker", "superseded", "gone"})


@lru_cache(maxsize=1)
def ingestion() -> S3Ingestion:
    """Built on first use and kept for the life of the execution environment (connections reused)."""
    env = os.environ
    store, embedder = store_from_env(env), embedder_from_env(env)
    # A running embedding A/B: every document goes into every arm's index, each embedded by its arm's model.
    experiment = running_embedding_experiment(experiments_from_env(env))
    arms = (arm_backends(env, experiment, store=store, embedder=embedder, store_factory=store_from_env,
                         embedder_factory=embedder_from_env) if experiment else None)
    pipeline = IngestionPipeline(
        store,
        embedder,
        TokenChunker.from_env(env),
        max_document_bytes=int(env.get("MAX_DOCUMENT_BYTES") or DEFAULT_MAX_DOCUMENT_BYTES),
        arms=arms,
    )
    return S3Ingestion.from_env(pipeline, os.environ)


def record_handler(record: SQSRecord) -> None:
    try:
        outcome = ingestion().handle_message(record.body)
    except UpstreamThrottled as exc:
        metrics.add_metric(name="EmbeddingThrottled", unit=MetricUnit.Count, value=1)
        logger.warning("embedding throttled; SQS will redeliver", extra={"message_id": record.message_id, "error": str(exc)})
        raise
    if isinstance(outcome, Skipped) and outcome.reason in QUIET_SKIPS:
        logger.info("event skipped", extra={"document_id": outcome.document_id, "reason": outcome.reason,
                                            "detail": outcome.message, "message_id": record.message_id})
        return
    if isinstance(outcome, Skipped):
        metrics.add_metric(name="DocumentsSkipped", unit=MetricUnit.Count, value=1)
        logger.warning("document skipped", extra={"document_id": outcome.document_id, "reason": outcome.reason,
                                                  "detail": outcome.message, "message_id": record.message_id})
        return
    _record(outcome)


def _record(outcome: IngestOutcome) -> None:
    logger.info("document processed", extra={"document_id": outcome.document_id, "status": outcome.status,
                                               "chunks": outcome.chunks, **({"arms": outcome.arms} if outcome.arms else {})})
    if outcome.status == "deleted":
        metrics.add_metric(name="DocumentsDeleted", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="ChunksDeleted", unit=MetricUnit.Count, value=outcome.chunks)
    elif outcome.status == "unchanged":
        metrics.add_metric(name="DocumentsUnchanged", unit=MetricUnit.Count, value=1)
    elif outcome.status == "superseded":  # an out-of-order event older than what the index holds
        metrics.add_metric(name="EventsSuperseded", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="DocumentsIndexed", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="ChunksWritten", unit=MetricUnit.Count, value=outcome.chunks)
        metrics.add_metric(name="EmbeddingLatency", unit=MetricUnit.Milliseconds, value=outcome.embed_seconds * 1000)
        metrics.add_metric(name="StoreWriteLatency", unit=MetricUnit.Milliseconds, value=outcome.store_seconds * 1000)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
