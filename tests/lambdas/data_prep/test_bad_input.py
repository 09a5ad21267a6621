"""Bad events into every data-prep function: each answers with an error naming the field, and
the quarantine path records whatever it is given instead of crashing."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.runtime.data_prep import ground_truth as gt
from lambdas.runtime.data_prep import workflow
from lambdas.runtime.data_prep.errors import InvalidRecords
from lambdas.runtime.data_prep.events import InvalidEvent
from tests.lambdas.data_prep.helpers import ARTIFACTS, DATA, received_events, s3_event

SETTINGS = workflow.Settings(data_bucket=DATA, artifacts_bucket=ARTIFACTS, jobs_table="jobs")
LABELING = gt.LabelingSettings(
    data_bucket=DATA, artifacts_bucket=ARTIFACTS, role_arn="arn:aws:iam::123456789012:role/gt",
    workteam_arn="arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/t", kms_key_arn="k", region="us-east-1",
)
DOC = {"bucket": DATA, "key": "raw/a.pdf", "version_id": "v1", "size": 10, "kind": "textract",
       "content_type": "application/pdf", "document_id": "a-pdf-0123"}


@pytest.mark.parametrize(
    ("step", "event", "message"),
    [
        ("start_extraction", {"document": DOC}, r"Extract step input: task_token: Field required"),
        ("start_extraction", {"task_token": "t"}, r"Extract step input: document: Field required"),
        ("start_extraction", {"document": {**DOC, "key": ""}, "task_token": "t"}, r"document\.key: String should have at least 1 character"),
        ("enrich", {"document": DOC}, r"Enrich step input: extraction\.extracted_key is required for a Textract document"),
        ("enrich", {"document": {**DOC, "kind": "video"}}, r"document\.kind: Input should be 'textract', 'text' or 'records'"),
        ("enrich", {"document": {**DOC, "size": -1}, "extraction": {"extracted_key": "k"}}, r"document\.size: Input should be greater than or equal to 0"),
        ("custom_step", {"document": DOC}, r"CustomStep input: enriched_key: Field required"),
        ("publish", {"document": DOC, "custom": {}}, r"Publish step input: custom\.enriched_key: Field required"),
        ("publish", {"document": "raw/a.pdf", "custom": {"enriched_key": "k"}}, r"document: Input should be a valid dictionary"),
    ],
)
def test_workflow_steps_name_the_bad_field(step: str, event: dict, message: str) -> None:
    # No AWS client is reached: validation comes first.
    clients = {
        "start_extraction": {"textract": None, "dynamodb": None},
        "enrich": {"s3": None, "comprehend": None},
        "custom_step": {"s3": None},
        "publish": {"s3": None},
    }[step]
    with pytest.raises(InvalidEvent, match=message):
        getattr(workflow, step)(event, settings=SETTINGS, **clients)


def test_textract_completion_without_a_job_id_is_named() -> None:
    with pytest.raises(InvalidEvent, match=r"Textract completion message: JobId: Field required"):
        workflow.finish_extraction({"Status": "SUCCEEDED"}, textract=None, dynamodb=None, sfn=None, s3=None, settings=SETTINGS)


def test_validate_names_a_non_s3_event() -> None:
    with pytest.raises(InvalidEvent, match=r"not an S3 'Object Created' event.*object: Field required"):
        workflow.validate({"detail": {"bucket": {"name": DATA}}}, None)
    with pytest.raises(InvalidEvent, match=r"Input should be a valid dictionary"):
        workflow.validate({"detail": "raw/a.pdf"}, None)


START = {"action": "start", "job_name": "faq-1", "task_type": "text-classification", "labels": ["a"], "document_ids": ["d1"], "dataset": "faq"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"document_ids": "d1"}, r"document_ids: Input should be a valid list"),
        ({"document_ids": []}, r"document_ids: List should have at least 1 item"),
        ({"job_name": "faq_1!"}, r"job_name: String should match pattern"),
        ({"task_type": "image"}, r"task_type: Input should be 'text-classification'"),
        ({"dataset": "FAQ"}, r"dataset: String should match pattern"),
        ({"labels": []}, r"at least one label is required for text-classification"),
        ({"workers_per_object": 0}, r"workers_per_object: Input should be greater than or equal to 1"),
        ({"lables": ["a"]}, r"lables: Extra inputs are not permitted"),
    ],
)
def test_labeling_requests_name_the_bad_field(change: dict, message: str) -> None:
    with pytest.raises(InvalidEvent, match=r"labeling request: .*" + message):
        gt.start_labeling({**START, **change}, s3=None, sagemaker=None, settings=LABELING)


@pytest.mark.parametrize(("start", "end"), [(5, 400), (-1, 3), (4, 2), ("0", 3), (None, None)])
def test_ner_offsets_outside_the_text_are_refused(start, end) -> None:
    line = {"source": "Ann works at Acme.", "label": {"annotations": {"entities": [{"label": "ORG", "startOffset": start, "endOffset": end}]}},
            "label-metadata": {"type": "groundtruth/text-span"}}
    with pytest.raises(InvalidRecords, match=rf"output manifest line 1: entity 'ORG' offsets {start}-{end} lie outside its text of 18 characters"):
        gt.output_to_records("named-entity-recognition", "label", [json.dumps(line)])


def test_qa_post_annotation_request_is_validated() -> None:
    from lambdas.runtime.data_prep.events import PostAnnotation, parse

    with pytest.raises(InvalidEvent, match=r"payload\.s3Uri: String should match pattern"):
        parse(PostAnnotation, {"payload": {"s3Uri": "https://x"}, "labelAttributeName": "l"}, "Ground Truth consolidation request")
    with pytest.raises(InvalidEvent, match=r"labelAttributeName: Field required"):
        parse(PostAnnotation, {"payload": {"s3Uri": "s3://b/k"}}, "Ground Truth consolidation request")


# --- the quarantine path never crashes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "error_name", "reason_part"),
    [
        ({"input": s3_event("raw/a.txt", None), "error": "States.Timeout while waiting"}, "Unknown", "States.Timeout while waiting"),
        ({"input": s3_event("raw/a.txt", None), "error": ["odd", 1]}, "Unknown", '["odd", 1]'),
        ({"input": s3_event("raw/a.txt", None), "error": {"Error": "X", "Cause": "{not json"}}, "X", "{not json"),
        ({"input": s3_event("raw/a.txt", None), "error": {"Error": "X", "Cause": "[1, 2]"}}, "X", "[1, 2]"),
        ({"input": s3_event("raw/a.txt", None)}, "Unknown", ""),
        ({"error": {"Error": "X"}}, "X", "not an S3 event"),
        ({"input": "raw/a.txt", "error": None}, "Unknown", "not an S3 event"),
        ("just a string", "Unknown", "not an S3 event"),
        ({"input": {"document": {"key": 42}}, "execution_id": 7, "stage": ["x"]}, "Unknown", "not an S3 event"),
    ],
)
def test_quarantine_records_whatever_it_is_given(aws, event, error_name: str, reason_part: str) -> None:
    aws["s3"].put_object(Bucket=DATA, Key="raw/a.txt", Body=b"hello")
    reason = workflow.quarantine(event, s3=aws["s3"], events=aws["events"], settings=SETTINGS)
    assert reason["error"] == error_name and reason_part in reason["reason"]
    stored = json.loads(aws["s3"].get_object(Bucket=DATA, Key=reason["reason_key"])["Body"].read())
    assert stored["error"] == error_name
    assert received_events(aws)[0]["detail"]["reason_key"] == reason["reason_key"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["input", "error", "document", "detail", "key", "Error", "Cause", "stage"]), inner, max_size=4),
                          max_leaves=12))
def test_quarantine_never_crashes_on_any_json(aws, event) -> None:
    reason = workflow.quarantine(event, s3=aws["s3"], events=aws["events"], settings=SETTINGS)
    assert reason["schema"] == "llmops.quarantine-reason/v1" and reason["reason_key"].startswith("quarantine/")
