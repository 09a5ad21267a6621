"""The workflow steps end to end against moto (S3, DynamoDB, SNS, EventBridge) with Textract,
Comprehend and Step Functions task-token calls through botocore Stubbers."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from lambdas.runtime.data_prep import workflow
from lambdas.runtime.data_prep.curated import validate_curated
from lambdas.runtime.data_prep.datasets import read_dataset_version
from lambdas.runtime.data_prep.errors import InvalidRecords, UnsupportedDocument
from tests.lambdas.data_prep.helpers import ARTIFACTS, DATA, REGION, make_pdf, received_events, s3_event
from tests.lambdas.data_prep.textract_blocks import PageBuilder, paginate

SETTINGS = workflow.Settings(
    data_bucket=DATA,
    artifacts_bucket=ARTIFACTS,
    textract_features=("LAYOUT", "TABLES"),
    textract_topic_arn="arn:aws:sns:us-east-1:123456789012:AmazonTextract-llmops",
    textract_role_arn="arn:aws:iam::123456789012:role/textract-publish",
    jobs_table="jobs",
    pii_entity_types=("ALL",),
    mask="[{type}]",
)


def _stubbed(service: str):
    client = boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def _comprehend_for(text_pii: dict[str, str]):
    """A Comprehend stub answering every detect call; PII located by substring."""
    client, stub = _stubbed("comprehend")

    def pii_response(text: str) -> dict[str, Any]:
        ents = []
        for needle, kind in text_pii.items():
            i = text.find(needle)
            while i != -1:
                ents.append({"Score": 0.99, "Type": kind, "BeginOffset": i, "EndOffset": i + len(needle)})
                i = text.find(needle, i + 1)
        return {"Entities": ents}

    return client, stub, pii_response


def _put(aws, key: str, body: bytes) -> str:
    return aws["s3"].put_object(Bucket=DATA, Key=key, Body=body)["VersionId"]


def _raw_unchanged(aws, key: str, version: str, body: bytes) -> None:
    versions = aws["s3"].list_object_versions(Bucket=DATA, Prefix=key).get("Versions", [])
    assert [v["VersionId"] for v in versions if v["Key"] == key] == [version]
    assert aws["s3"].get_object(Bucket=DATA, Key=key)["Body"].read() == body


def test_text_upload_runs_validate_enrich_custom_publish(aws) -> None:
    body = "Quarterly notes\n\n\nCall Jane Roe on 555-0100.   \n\nJane Roe owns the budget.".encode()
    key = "raw/notes/q1 plan.txt"
    version = _put(aws, key, body)
    doc = workflow.validate(s3_event(key, version), aws["s3"])
    assert doc["key"] == key and doc["kind"] == "text"

    comprehend, stub, pii = _comprehend_for({"Jane Roe": "NAME", "555-0100": "PHONE"})
    text = body.decode()
    stub.add_response("detect_dominant_language", {"Languages": [{"LanguageCode": "en", "Score": 0.99}]})
    stub.add_response("detect_pii_entities", pii(text), {"Text": text, "LanguageCode": "en"})
    stub.add_response("detect_entities", {"Entities": [{"Score": 0.9, "Type": "TITLE", "Text": "Quarterly notes", "BeginOffset": 0, "EndOffset": 15}]}, {"Text": ANY, "LanguageCode": "en"})
    stub.add_response("detect_key_phrases", {"KeyPhrases": [{"Score": 0.95, "Text": "the budget", "BeginOffset": 0, "EndOffset": 10}]}, {"Text": ANY, "LanguageCode": "en"})
    with stub:
        enriched = workflow.enrich({"document": doc}, s3=aws["s3"], comprehend=comprehend, settings=SETTINGS)
    assert enriched["entity_counts"] == {"NAME": 2, "PHONE": 1}
    custom = workflow.custom_step({"document": doc, "enriched_key": enriched["enriched_key"]}, s3=aws["s3"], settings=SETTINGS)
    out = workflow.publish({"document": doc, "custom": custom}, s3=aws["s3"], settings=SETTINGS)

    curated = validate_curated(json.loads(aws["s3"].get_object(Bucket=DATA, Key=out["curated_key"])["Body"].read()))
    assert out["curated_key"] == f"curated/{doc['document_id']}.curated.json"
    assert curated["pages"] == [{"page": 1, "text": "Quarterly notes\n\nCall [NAME] on [PHONE].\n\n[NAME] owns the budget."}]
    assert curated["source"] == {"bucket": DATA, "key": key, "version_id": version}
    assert curated["lineage"]["extractor"] == "text" and curated["lineage"]["custom_step"] == "default-normalize"
    assert curated["lineage"]["redaction"] == {"entity_counts": {"NAME": 2, "PHONE": 1}, "mask": "[{type}]"}
    assert curated["metadata"]["key_phrases"] == ["the budget"]
    _raw_unchanged(aws, key, version, body)


def test_pdf_upload_waits_for_textract_through_the_task_token(aws) -> None:
    pdf = make_pdf(2)
    key = "raw/contracts/msa.pdf"
    version = _put(aws, key, pdf)
    doc = workflow.validate(s3_event(key, version), aws["s3"])
    assert doc["kind"] == "textract"

    textract, tstub = _stubbed("textract")
    tstub.add_response(
        "start_document_analysis",
        {"JobId": "job-42"},
        {
            "DocumentLocation": {"S3Object": {"Bucket": DATA, "Name": key, "Version": version}},
            "FeatureTypes": ["LAYOUT", "TABLES"],
            "NotificationChannel": {"SNSTopicArn": SETTINGS.textract_topic_arn, "RoleArn": SETTINGS.textract_role_arn},
            "JobTag": ANY,
            "ClientRequestToken": workflow.request_token("exec-1", DATA, key, version),
        },
    )
    with tstub:
        started = workflow.start_extraction(
            {"document": doc, "task_token": "token-abc", "execution_id": "exec-1"}, textract=textract, dynamodb=aws["dynamodb"], settings=SETTINGS
        )
    assert started == {"job_id": "job-42"}

    # Textract publishes its completion to SNS; the result function gets that message.
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="AmazonTextract-llmops")["TopicArn"]
    q = aws["sqs"].create_queue(QueueName="textract-done")["QueueUrl"]
    q_arn = aws["sqs"].get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=q_arn)
    sns.publish(TopicArn=topic, Message=json.dumps({"JobId": "job-42", "Status": "SUCCEEDED", "API": "StartDocumentAnalysis", "JobTag": "x", "Timestamp": 1, "DocumentLocation": {"S3ObjectName": key, "S3Bucket": DATA}}))
    envelope = json.loads(aws["sqs"].receive_message(QueueUrl=q)["Messages"][0]["Body"])
    message = json.loads(envelope["Message"])

    p1, p2 = PageBuilder(1), PageBuilder(2)
    p1.layout("LAYOUT_TITLE", ["Master Services Agreement"])
    p1.layout("LAYOUT_TEXT", ["Signed by Ana Lopez for the customer."])
    p2.table([["Fee", "Amount"], ["Setup", "100"]])
    responses = paginate(p1.blocks + p2.blocks, 6, pages=2, analysis=True)
    for r in responses:
        tstub.add_response("get_document_analysis", r)
    sfn, sstub = _stubbed("stepfunctions")
    sstub.add_response("send_task_success", {}, {"taskToken": "token-abc", "output": ANY})
    with tstub, sstub:
        done = workflow.finish_extraction(message, textract=textract, dynamodb=aws["dynamodb"], sfn=sfn, s3=aws["s3"], settings=SETTINGS)
    sstub.assert_no_pending_responses()
    assert done["outcome"] == "succeeded" and done["result_pages"] == len(responses)
    assert "Item" not in aws["dynamodb"].get_item(TableName="jobs", Key={"job_id": {"S": "job-42"}})
    extraction = {"extracted_key": done["extracted_key"], "job_id": "job-42"}

    comprehend, cstub, pii = _comprehend_for({"Ana Lopez": "NAME"})
    cstub.add_response("detect_dominant_language", {"Languages": [{"LanguageCode": "en", "Score": 0.99}]})
    whole = "# Master Services Agreement\n\nSigned by Ana Lopez for the customer.\n\n| Fee | Amount |\n| --- | --- |\n| Setup | 100 |"
    cstub.add_response("detect_pii_entities", pii(whole), {"Text": whole, "LanguageCode": "en"})
    cstub.add_response("detect_entities", {"Entities": []})
    cstub.add_response("detect_key_phrases", {"KeyPhrases": []})
    with cstub:
        enriched = workflow.enrich({"document": doc, "extraction": extraction}, s3=aws["s3"], comprehend=comprehend, settings=SETTINGS)
    custom = workflow.custom_step({"document": doc, "enriched_key": enriched["enriched_key"]}, s3=aws["s3"], settings=SETTINGS)
    out = workflow.publish({"document": doc, "extraction": extraction, "custom": custom}, s3=aws["s3"], settings=SETTINGS)
    curated = json.loads(aws["s3"].get_object(Bucket=DATA, Key=out["curated_key"])["Body"].read())
    assert [p["page"] for p in curated["pages"]] == [1, 2]
    assert curated["pages"][0]["text"] == "# Master Services Agreement\n\nSigned by [NAME] for the customer."
    assert curated["pages"][1]["text"].startswith("| Fee | Amount |")
    assert curated["lineage"]["textract_job_id"] == "job-42" and curated["lineage"]["extractor"] == "textract"
    _raw_unchanged(aws, key, version, pdf)


@pytest.mark.parametrize(
    ("status", "error"),
    [("FAILED", "TextractJobFailed"), ("PARTIAL_SUCCESS", "TextractPartialSuccess")],
)
def test_failed_or_partial_textract_job_sends_task_failure(aws, status: str, error: str) -> None:
    doc = {"bucket": DATA, "key": "raw/x.pdf", "version_id": None, "size": 10, "kind": "textract", "content_type": "application/pdf", "document_id": "x-pdf-1", "dataset": None}
    aws["dynamodb"].put_item(TableName="jobs", Item={"job_id": {"S": "j1"}, "task_token": {"S": "tok"}, "document": {"S": json.dumps(doc)}, "analysis": {"BOOL": True}})
    textract, tstub = _stubbed("textract")
    response = {"JobStatus": status, "StatusMessage": "INVALID_IMAGE_TYPE", "Blocks": []}
    if status == "PARTIAL_SUCCESS":
        response["Warnings"] = [{"ErrorCode": "PAGE_PROCESSING_FAILED", "Pages": [3, 4]}]
    tstub.add_response("get_document_analysis", response)
    sfn, sstub = _stubbed("stepfunctions")
    sstub.add_response("send_task_failure", {}, {"taskToken": "tok", "error": error, "cause": ANY})
    with tstub, sstub:
        result = workflow.finish_extraction({"JobId": "j1", "Status": status}, textract=textract, dynamodb=aws["dynamodb"], sfn=sfn, s3=aws["s3"], settings=SETTINGS)
    sstub.assert_no_pending_responses()
    assert result["outcome"] == "failed" and result["error"] == error


def test_unknown_job_is_an_error_not_a_silent_drop(aws) -> None:
    with pytest.raises(LookupError, match="no task token"):
        workflow.finish_extraction({"JobId": "nope"}, textract=None, dynamodb=aws["dynamodb"], sfn=None, s3=aws["s3"], settings=SETTINGS)


@pytest.mark.parametrize(
    ("key", "body", "error"),
    [
        ("raw/tool.exe", b"MZ\x90\x00", "UnsupportedDocument"),
        ("raw/locked.pdf", make_pdf(1, password="pw"), "EncryptedDocument"),
        ("raw/cut.pdf", make_pdf(2)[:300], "CorruptDocument"),
    ],
)
def test_bad_uploads_end_in_quarantine_with_reason_and_event(aws, key: str, body: bytes, error: str) -> None:
    version = _put(aws, key, body)
    event = s3_event(key, version)
    with pytest.raises(Exception) as caught:
        workflow.validate(event, aws["s3"])
    assert type(caught.value).__name__ == error
    # What the state machine's Catch passes on: the Lambda error name and JSON cause.
    sfn_error = {"Error": error, "Cause": json.dumps({"errorMessage": str(caught.value), "errorType": error, "stackTrace": []})}
    reason = workflow.quarantine({"input": event, "error": sfn_error, "execution_id": "arn:exec:1", "stage": "Validate"}, s3=aws["s3"], events=aws["events"], settings=SETTINGS)
    assert reason["error"] == error and reason["copied"]
    stored = json.loads(aws["s3"].get_object(Bucket=DATA, Key=f"quarantine/{key}.reason.json")["Body"].read())
    assert stored["reason"] == str(caught.value) and stored["source"]["version_id"] == version
    assert aws["s3"].get_object(Bucket=DATA, Key=f"quarantine/{key}")["Body"].read() == body
    (evt,) = received_events(aws)
    assert evt["source"] == "llmops.dataprep" and evt["detail-type"] == "Document Quarantined"
    assert evt["detail"]["error"] == error and evt["detail"]["reason_key"] == f"quarantine/{key}.reason.json"
    _raw_unchanged(aws, key, version, body)


def test_throttling_after_retries_is_quarantined_with_its_reason(aws) -> None:
    key = "raw/busy.pdf"
    version = _put(aws, key, make_pdf(1))
    cause = {"errorMessage": "Textract throttled the request (ProvisionedThroughputExceededException); retry later", "errorType": "ServiceThrottled"}
    reason = workflow.quarantine({"input": s3_event(key, version), "error": {"Error": "ServiceThrottled", "Cause": json.dumps(cause)}}, s3=aws["s3"], events=aws["events"], settings=SETTINGS)
    assert reason["error"] == "ServiceThrottled" and "ProvisionedThroughputExceeded" in reason["reason"]
    assert received_events(aws)[0]["detail"]["error"] == "ServiceThrottled"


def test_quarantine_of_a_vanished_object_still_records_the_reason(aws) -> None:
    reason = workflow.quarantine({"input": s3_event("raw/gone.pdf", None), "error": {"Error": "States.Timeout", "Cause": ""}}, s3=aws["s3"], events=aws["events"], settings=SETTINGS)
    assert reason["copied"] is False and "not found" in reason["reason"]
    assert aws["s3"].head_object(Bucket=DATA, Key="quarantine/raw/gone.pdf.reason.json")


def test_dataset_upload_is_redacted_and_published_as_a_version(aws) -> None:
    lines = [
        {"instruction": "Summarise the ticket", "input": "Customer Jane Roe cannot log in.", "response": "Login failure for Jane Roe."},
        {"instruction": "Classify urgency", "response": "low"},
    ]
    key = "raw/datasets/support-qa/batch-1.jsonl"
    version = _put(aws, key, "".join(json.dumps(x) + "\n" for x in lines).encode())
    doc = workflow.validate(s3_event(key, version), aws["s3"])
    comprehend, stub, pii = _comprehend_for({"Jane Roe": "NAME"})
    fields = [lines[0]["input"], lines[0]["instruction"], lines[0]["response"], lines[1]["instruction"], lines[1]["response"]]
    whole = "\n\n".join(fields)
    stub.add_response("detect_dominant_language", {"Languages": [{"LanguageCode": "en", "Score": 0.98}]}, {"Text": whole})
    stub.add_response("detect_pii_entities", pii(whole), {"Text": whole, "LanguageCode": "en"})
    with stub:
        enriched = workflow.enrich({"document": doc}, s3=aws["s3"], comprehend=comprehend, settings=SETTINGS)
    custom = workflow.custom_step({"document": doc, "enriched_key": enriched["enriched_key"]}, s3=aws["s3"], settings=SETTINGS)
    out = workflow.publish({"document": doc, "custom": custom}, s3=aws["s3"], settings=SETTINGS)
    assert (out["dataset"], out["version"]) == ("support-qa", 1)
    manifest, records = read_dataset_version(aws["s3"], DATA, "support-qa", 1)
    assert manifest["format"] == "instruction" and manifest["record_count"] == 2
    assert manifest["sources"] == [f"s3://{DATA}/{key}?versionId={version}"]
    assert records[0]["input"] == "Customer [NAME] cannot log in." and "Jane Roe" not in json.dumps(records)


def test_invalid_dataset_lines_are_named(aws) -> None:
    key = "raw/datasets/support-qa/bad.jsonl"
    version = _put(aws, key, b'{"instruction": "a", "response": "b"}\nnot json\n{"instruction": "", "response": "x"}\n')
    doc = workflow.validate(s3_event(key, version), aws["s3"])
    comprehend, _ = _stubbed("comprehend")
    with pytest.raises(InvalidRecords, match=r"2 invalid record\(s\): line 2: .*line 3: field 'instruction' is empty"):
        workflow.enrich({"document": doc}, s3=aws["s3"], comprehend=comprehend, settings=SETTINGS)


def test_validate_rejects_a_non_s3_event(aws) -> None:
    with pytest.raises(ValueError, match="detail.bucket.name"):
        workflow.validate({"detail": {}}, aws["s3"])
    with pytest.raises(UnsupportedDocument):
        _put(aws, "raw/x.docx", b"PK")
        workflow.validate(s3_event("raw/x.docx", None), aws["s3"])


def test_settings_from_environment() -> None:
    s = workflow.Settings.from_env({"TEXTRACT_FEATURES": "LAYOUT, TABLES", "PII_ENTITY_TYPES": "NAME,EMAIL", "PII_MASK": "***", "PII_MIN_SCORE": "0.8"})
    assert s.textract_features == ("LAYOUT", "TABLES") and s.pii_entity_types == ("NAME", "EMAIL")
    assert s.mask == "***" and s.pii_min_score == 0.8 and s.classifier_endpoint_arn is None


def test_completion_after_the_execution_timed_out_is_not_an_error(aws) -> None:
    doc = {"bucket": DATA, "key": "raw/slow.pdf", "version_id": None, "size": 10, "kind": "textract", "content_type": "application/pdf", "document_id": "slow-pdf-1", "dataset": None}
    aws["dynamodb"].put_item(TableName="jobs", Item={"job_id": {"S": "j2"}, "task_token": {"S": "old"}, "document": {"S": json.dumps(doc)}, "analysis": {"BOOL": False}})
    textract, tstub = _stubbed("textract")
    p = PageBuilder(1)
    p.line("late text")
    tstub.add_response("get_document_text_detection", paginate(p.blocks, 100, pages=1, analysis=False)[0])
    sfn, sstub = _stubbed("stepfunctions")
    sstub.add_client_error("send_task_success", service_error_code="TaskTimedOut", http_status_code=400)
    with tstub, sstub:
        result = workflow.finish_extraction({"JobId": "j2"}, textract=textract, dynamodb=aws["dynamodb"], sfn=sfn, s3=aws["s3"], settings=SETTINGS)
    assert result["outcome"] == "execution-gone"
    assert "Item" not in aws["dynamodb"].get_item(TableName="jobs", Key={"job_id": {"S": "j2"}})


def _dataset_through(aws, key: str, lines: list[dict], language: str = "en") -> dict:
    """Validate -> enrich (Comprehend stubbed, no PII found) -> custom -> publish one dataset upload."""
    version = _put(aws, key, "".join(json.dumps(x) + "\n" for x in lines).encode())
    doc = workflow.validate(s3_event(key, version), aws["s3"])
    comprehend, stub = _stubbed("comprehend")
    stub.add_response("detect_dominant_language", {"Languages": [{"LanguageCode": language, "Score": 0.97}]}, {"Text": ANY})
    stub.add_response("detect_pii_entities", {"Entities": []}, {"Text": ANY, "LanguageCode": language})
    with stub:
        enriched = workflow.enrich({"document": doc}, s3=aws["s3"], comprehend=comprehend, settings=SETTINGS)
    custom = workflow.custom_step({"document": doc, "enriched_key": enriched["enriched_key"]}, s3=aws["s3"], settings=SETTINGS)
    return workflow.publish({"document": doc, "custom": custom}, s3=aws["s3"], settings=SETTINGS)


def test_identical_reupload_is_deduplicated_by_content_hash(aws) -> None:
    lines = [{"text": "The invoice is late", "label": "billing"}, {"text": "I cannot log in", "label": "account"}]
    first = _dataset_through(aws, "raw/datasets/triage/a.jsonl", lines)
    again = _dataset_through(aws, "raw/datasets/triage/b.jsonl", lines)  # same records, other file name
    assert (first["version"], first["deduplicated"]) == (1, False)
    assert (again["version"], again["deduplicated"], again["manifest_key"]) == (1, True, first["manifest_key"])
    keys = [o["Key"] for o in aws["s3"].list_objects_v2(Bucket=DATA, Prefix="datasets/triage/").get("Contents", [])]
    assert sorted(keys) == ["datasets/triage/v1/data.jsonl", "datasets/triage/v1/manifest.json"]
    changed = _dataset_through(aws, "raw/datasets/triage/c.jsonl", lines[:1])
    assert (changed["version"], changed["deduplicated"]) == (2, False)
    # Back to the first content: that version is found again, no v3 (and so no new training run).
    assert _dataset_through(aws, "raw/datasets/triage/d.jsonl", lines)["version"] == 1


def test_dataset_in_a_language_pii_detection_lacks_is_refused(aws) -> None:
    from lambdas.runtime.data_prep.errors import UnsupportedLanguage

    key = "raw/datasets/triage/fr.jsonl"
    version = _put(aws, key, json.dumps({"text": "La facture est en retard", "label": "billing"}).encode() + b"\n")
    doc = workflow.validate(s3_event(key, version), aws["s3"])
    comprehend, stub = _stubbed("comprehend")
    stub.add_response("detect_dominant_language", {"Languages": [{"LanguageCode": "fr", "Score": 0.99}]}, {"Text": ANY})
    with stub, pytest.raises(UnsupportedLanguage, match=r"dominant language 'fr' is not supported by PII detection \(supported: en, es\)"):
        workflow.enrich({"document": doc}, s3=aws["s3"], comprehend=comprehend, settings=SETTINGS)


def test_spanish_dataset_is_redacted_as_spanish(aws) -> None:
    out = _dataset_through(aws, "raw/datasets/soporte/a.jsonl", [{"text": "No puedo entrar", "label": "cuenta"}], language="es")
    assert out["version"] == 1
