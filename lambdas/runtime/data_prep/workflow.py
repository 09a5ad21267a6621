"""The data-prep workflow's steps, one function per state-machine task.

Handlers in ``lambdas/data_prep_*`` are thin wrappers around these functions, which take their
AWS clients as arguments so tests run them against moto or a botocore Stubber.

Intermediate results (extracted and enriched pages) can exceed Step Functions' 256 KB payload
limit, so they go to the artifacts bucket under ``dataprep/work/<document_id>/`` and the state
carries only their keys.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from lambdas.runtime.data_prep import curated as curated_mod
from lambdas.runtime.data_prep import datasets as datasets_mod
from lambdas.runtime.data_prep.comprehend import ENTITY_LANGUAGES, PII_LANGUAGES, ComprehendAnalyzer
from lambdas.runtime.data_prep.documents import SourceDocument, classify_upload, dumps, read_head_tail, text_pages
from lambdas.runtime.data_prep.enrich import PAGE_SEPARATOR, EnrichedDocument, enrich_pages
from lambdas.runtime.data_prep.errors import CorruptDocument
from lambdas.runtime.data_prep.events import (
    CustomStepInput,
    Document,
    EnrichInput,
    ExtractStart,
    ObjectCreated,
    PublishInput,
    TextractCompletion,
    parse,
)
from lambdas.runtime.data_prep.quarantine import quarantine_document
from lambdas.runtime.data_prep.textract import Page, check_status, request_token, start_job, stream_job

WORK_PREFIX = "dataprep/work/"
TOKEN_TTL_S = 7 * 24 * 3600
# SendTask* answers for a task that no longer waits (execution timed out, stopped, or finished).
_GONE_TASK_CODES = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


@dataclass(frozen=True)
class Settings:
    """Configuration the stack passes to the functions as environment variables."""

    data_bucket: str = ""
    artifacts_bucket: str = ""
    textract_features: tuple[str, ...] = ()
    textract_topic_arn: str = ""
    textract_role_arn: str = ""
    jobs_table: str = ""
    pii_entity_types: tuple[str, ...] = ("ALL",)
    pii_min_score: float = 0.5
    mask: str = "[{type}]"
    classifier_endpoint_arn: str | None = None
    event_bus_name: str = "default"
    kms_key_arn: str | None = None
    custom_step_name: str = "default-normalize"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)

        def items(name: str, default: str = "") -> tuple[str, ...]:
            return tuple(x.strip() for x in env.get(name, default).split(",") if x.strip())

        return cls(
            data_bucket=env.get("DATA_BUCKET", ""),
            artifacts_bucket=env.get("ARTIFACTS_BUCKET", ""),
            textract_features=items("TEXTRACT_FEATURES"),
            textract_topic_arn=env.get("TEXTRACT_TOPIC_ARN", ""),
            textract_role_arn=env.get("TEXTRACT_ROLE_ARN", ""),
            jobs_table=env.get("JOBS_TABLE", ""),
            pii_entity_types=items("PII_ENTITY_TYPES", "ALL"),
            pii_min_score=float(env.get("PII_MIN_SCORE", "0.5")),
            mask=env.get("PII_MASK", "[{type}]"),
            classifier_endpoint_arn=env.get("CLASSIFIER_ENDPOINT_ARN") or None,
            event_bus_name=env.get("EVENT_BUS_NAME", "default"),
            kms_key_arn=env.get("KMS_KEY_ARN") or None,
            custom_step_name=env.get("CUSTOM_STEP_NAME", "default-normalize"),
        )


def _source(document: Document) -> SourceDocument:
    return SourceDocument.from_dict(document.model_dump())


def _put_json(s3: Any, bucket: str, key: str, data: Any) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=dumps(data), ContentType="application/json")
    return key


def _get_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


# --- 0. validate -----------------------------------------------------------------------------


def upload_from_event(event: dict[str, Any]) -> tuple[str, str, str | None]:
    """(bucket, key, version_id) from an EventBridge "Object Created" event (or its detail)."""
    detail = event.get("detail", event) if isinstance(event, dict) else event
    created = parse(
        ObjectCreated, detail, "event is not an S3 'Object Created' event (detail.bucket.name and detail.object.key are required)"
    )
    return created.bucket.name, created.object.key, created.object.version_id


def validate(event: dict[str, Any], s3: Any) -> dict[str, Any]:
    """Step 0: decide how the upload is read, or raise the error that quarantines it."""
    bucket, key, version_id = upload_from_event(event)
    try:
        size, head, tail = read_head_tail(s3, bucket, key, version_id)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        decoded = unquote_plus(key)
        # S3 event keys arrive URL-encoded; try the decoded key before giving up.
        if code in ("404", "NoSuchKey", "NotFound") and decoded != key:
            key = decoded
            size, head, tail = read_head_tail(s3, bucket, key, version_id)
        else:
            raise
    doc = classify_upload(bucket=bucket, key=key, version_id=version_id, size=size, head=head, tail=tail)
    return doc.to_dict()


# --- 1. extract --------------------------------------------------------------------------------


def start_extraction(event: dict[str, Any], *, textract: Any, dynamodb: Any, settings: Settings) -> dict[str, Any]:
    """Step 1a (``.waitForTaskToken``): start the Textract job and park the task token."""
    req = parse(ExtractStart, event, "Extract step input")
    doc, token = _source(req.document), req.task_token
    job_id = start_job(
        textract,
        bucket=doc.bucket,
        key=doc.key,
        version_id=doc.version_id,
        features=settings.textract_features,
        topic_arn=settings.textract_topic_arn,
        role_arn=settings.textract_role_arn,
        job_tag=re.sub(r"[^a-zA-Z0-9_.\-:]", "-", doc.document_id)[:64],
        # Same execution and object version -> same token -> the job already started, not a second one.
        client_request_token=request_token(req.execution_id, doc.bucket, doc.key, doc.version_id),
    )
    dynamodb.put_item(
        TableName=settings.jobs_table,
        Item={
            "job_id": {"S": job_id},
            "task_token": {"S": token},
            "document": {"S": json.dumps(doc.to_dict())},
            "analysis": {"BOOL": bool(settings.textract_features)},
            "expires_at": {"N": str(int(time.time()) + TOKEN_TTL_S)},
        },
    )
    return {"job_id": job_id}


def finish_extraction(
    message: dict[str, Any], *, textract: Any, dynamodb: Any, sfn: Any, s3: Any, settings: Settings
) -> dict[str, Any]:
    """Step 1b (SNS completion message): read every result page and resume the workflow.

    SUCCEEDED: blocks -> pages -> artifacts bucket, then ``SendTaskSuccess``. FAILED and
    PARTIAL_SUCCESS (and any error reading results) -> ``SendTaskFailure`` with the error
    name the state machine catches, so the document is quarantined with the reason.
    """
    job_id = parse(TextractCompletion, message, "Textract completion message").job_id
    item = dynamodb.get_item(TableName=settings.jobs_table, Key={"job_id": {"S": job_id}}, ConsistentRead=True).get("Item")
    if item is None:
        raise LookupError(f"no task token stored for Textract job {job_id} (expired, or started elsewhere)")
    token = item["task_token"]["S"]
    doc = SourceDocument.from_dict(json.loads(item["document"]["S"]))
    try:
        pages: list[Page] = []
        result = stream_job(textract, job_id, analysis=item.get("analysis", {}).get("BOOL", False), on_page=pages.append)
        check_status(result)
        key = f"{WORK_PREFIX}{doc.document_id}/{job_id}/extracted.json"
        _put_json(s3, settings.artifacts_bucket, key, {"job_id": job_id, "pages": [{"page": p.page, "text": p.text} for p in pages]})
        output = {"extracted_key": key, "job_id": job_id, "page_count": len(pages), "result_pages": result.responses}
        outcome = "succeeded"
    except Exception as exc:
        output = {"error": type(exc).__name__, "cause": str(exc)}
        outcome = "failed"
    try:
        if outcome == "succeeded":
            sfn.send_task_success(taskToken=token, output=json.dumps(output))
        else:
            sfn.send_task_failure(taskToken=token, error=output["error"], cause=output["cause"][:32000])
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code not in _GONE_TASK_CODES:
            raise
        # The execution timed out (and quarantined the document) or was stopped meanwhile.
        outcome = "execution-gone"
    dynamodb.delete_item(TableName=settings.jobs_table, Key={"job_id": {"S": job_id}})
    return {"job_id": job_id, "outcome": outcome, **output}


# --- 2. enrich ---------------------------------------------------------------------------------


def _load_pages(req: EnrichInput, doc: SourceDocument, s3: Any, settings: Settings) -> list[Page]:
    if doc.kind == "textract" and req.extraction is not None:
        extracted = _get_json(s3, settings.artifacts_bucket, req.extraction.extracted_key)
        return [Page(p["page"], p["text"]) for p in extracted["pages"]]
    extra = {"VersionId": doc.version_id} if doc.version_id else {}
    body = s3.get_object(Bucket=doc.bucket, Key=doc.key, **extra)["Body"].read()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptDocument(f"{doc.key}: not valid UTF-8 at byte {exc.start}") from None
    return [Page(n, t) for n, t in text_pages(text)]


def enrich(event: dict[str, Any], *, s3: Any, comprehend: Any, settings: Settings) -> dict[str, Any]:
    """Step 2: PII redaction, language, entities, key phrases, optional classification."""
    req = parse(EnrichInput, event, "Enrich step input")
    doc = _source(req.document)
    analyzer = ComprehendAnalyzer(
        comprehend,
        pii_entity_types=settings.pii_entity_types,
        min_score=settings.pii_min_score,
        classifier_endpoint_arn=settings.classifier_endpoint_arn,
    )
    if doc.kind == "records":
        return _enrich_records(doc, s3=s3, analyzer=analyzer, settings=settings)
    pages = _load_pages(req, doc, s3, settings)
    enriched = enrich_pages(
        pages, detector=analyzer, analyzer=analyzer, mask=settings.mask, pii_languages=PII_LANGUAGES, entity_languages=ENTITY_LANGUAGES
    )
    key = f"{WORK_PREFIX}{doc.document_id}/enriched.json"
    _put_json(
        s3,
        settings.artifacts_bucket,
        key,
        {
            "pages": [{"page": p.page, "text": p.text} for p in enriched.pages],
            "language": enriched.language,
            "entities": enriched.entities,
            "key_phrases": enriched.key_phrases,
            "classification": enriched.classification,
            "entity_counts": enriched.entity_counts,
            "mask": enriched.mask,
        },
    )
    return {"enriched_key": key, "entity_counts": enriched.entity_counts, "comprehend_requests": analyzer.requests}


def _enrich_records(doc: SourceDocument, *, s3: Any, analyzer: ComprehendAnalyzer, settings: Settings) -> dict[str, Any]:
    """Dataset uploads: every string field of every record is redacted like a page."""
    extra = {"VersionId": doc.version_id} if doc.version_id else {}
    body = s3.get_object(Bucket=doc.bucket, Key=doc.key, **extra)["Body"].read()
    try:
        lines = body.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise CorruptDocument(f"{doc.key}: not valid UTF-8 at byte {exc.start}") from None
    fmt, records = datasets_mod.parse_records(lines, doc.key)
    fields = [(i, name) for i, r in enumerate(records) for name in sorted(r)]
    pages = [Page(n + 1, records[i][name]) for n, (i, name) in enumerate(fields)]
    # The dataset's dominant language decides PII detection, as for documents; one Comprehend
    # call on its opening (records of one dataset share a language).
    language = analyzer.dominant_language(PAGE_SEPARATOR.join(p.text for p in pages))
    enriched = enrich_pages(
        pages, detector=analyzer, analyzer=None, language=language, mask=settings.mask, pii_languages=PII_LANGUAGES
    )
    redacted = [dict(r) for r in records]
    for (i, name), page in zip(fields, enriched.pages):
        redacted[i][name] = page.text
    key = f"{WORK_PREFIX}{doc.document_id}/records.json"
    _put_json(
        s3,
        settings.artifacts_bucket,
        key,
        {"format": fmt, "records": redacted, "entity_counts": enriched.entity_counts, "language": language},
    )
    return {"enriched_key": key, "entity_counts": enriched.entity_counts, "comprehend_requests": analyzer.requests}


# --- 3. custom step (extension point) -----------------------------------------------------------


_BLANKS = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+\n")


def default_custom_step(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The platform's default cleaning: trailing spaces and runs of blank lines; drop empty pages."""
    out = []
    for page in pages:
        text = _BLANKS.sub("\n\n", _TRAILING.sub("\n", page["text"])).strip()
        if text:
            out.append({"page": page["page"], "text": text})
    return out


def custom_step(event: dict[str, Any], *, s3: Any, settings: Settings) -> dict[str, Any]:
    """Step 3: the extension point. Input ``{document, enriched_key}``; output
    ``{enriched_key, custom_step}``. A replacement Lambda keeps this contract; to reject a
    document it raises an error (its name and message become the quarantine reason).
    """
    req = parse(CustomStepInput, event, "CustomStep input")
    doc, key = _source(req.document), req.enriched_key
    if doc.kind == "records":
        return {"enriched_key": key, "custom_step": None}
    work = _get_json(s3, settings.artifacts_bucket, key)
    work["pages"] = default_custom_step(work["pages"])
    new_key = f"{WORK_PREFIX}{doc.document_id}/custom.json"
    _put_json(s3, settings.artifacts_bucket, new_key, work)
    return {"enriched_key": new_key, "custom_step": settings.custom_step_name}


# --- 4. publish --------------------------------------------------------------------------------


def publish(event: dict[str, Any], *, s3: Any, settings: Settings) -> dict[str, Any]:
    """Step 4: the curated document (RAG reads it) or, for dataset uploads, a dataset version."""
    req = parse(PublishInput, event, "Publish step input")
    doc = _source(req.document)
    work = _get_json(s3, settings.artifacts_bucket, req.custom.enriched_key)
    if doc.kind == "records":
        version = datasets_mod.publish_dataset_version(
            s3,
            settings.data_bucket,
            dataset=doc.dataset or "unnamed",
            fmt=work["format"],
            records=work["records"],
            sources=[f"s3://{doc.bucket}/{doc.key}" + (f"?versionId={doc.version_id}" if doc.version_id else "")],
        )
        return {
            "dataset": version.dataset,
            "version": version.version,
            "manifest_key": version.manifest_key,
            "deduplicated": version.deduplicated,
        }
    enriched = EnrichedDocument(
        pages=[Page(p["page"], p["text"]) for p in work["pages"]],
        language=work["language"],
        entity_counts=work["entity_counts"],
        mask=work["mask"],
        entities=work["entities"],
        key_phrases=work["key_phrases"],
        classification=work["classification"],
    )
    curated = curated_mod.build_curated(
        document_id=doc.document_id,
        source={"bucket": doc.bucket, "key": doc.key, "version_id": doc.version_id},
        enriched=enriched,
        extractor="textract" if doc.kind == "textract" else "text",
        textract_job_id=req.extraction.job_id if req.extraction else None,
        custom_step=req.custom.custom_step,
    )
    key = curated_mod.write_curated(s3, settings.data_bucket, curated)
    return {"curated_key": key, "pages": len(curated["pages"])}


# --- quarantine ----------------------------------------------------------------------------------


def quarantine(event: Any, *, s3: Any, events: Any, settings: Settings) -> dict[str, Any]:
    """Catch path: ``{input, error, execution_id}`` -> quarantine copy, reason file, event.

    Never fails on what it is given: a missing or odd ``input``, an ``error`` that is a string
    (or anything else), a ``document`` without a key all still end in a reason file that says
    what arrived. Only S3 or EventBridge refusing the writes fails the execution (and alarms).
    """
    event = event if isinstance(event, dict) else {"input": event}
    original = event.get("input")
    notes = []
    try:
        bucket, key, version_id = upload_from_event(original if isinstance(original, dict) else {})
    except ValueError:
        # Not even an S3 event: record what arrived so nothing is lost silently.
        bucket, key, version_id = settings.data_bucket, f"raw/unparseable-event-{int(time.time())}", None
        notes.append("the failed input was not an S3 event")
    doc = event.get("document") or (original.get("document") if isinstance(original, dict) else None)
    if isinstance(doc, dict) and isinstance(doc.get("key"), str) and doc["key"]:
        key = doc["key"]
        version_id = doc.get("version_id") if isinstance(doc.get("version_id"), str) else None
    stage = event.get("stage")
    execution_id = event.get("execution_id")
    return quarantine_document(
        s3,
        events,
        bucket=bucket,
        key=key,
        version_id=version_id,
        error=event.get("error"),
        execution_id=execution_id if isinstance(execution_id, str) else None,
        event_bus_name=settings.event_bus_name,
        stage=stage if isinstance(stage, str) else None,
        notes=notes,
    )
