"""Dataset versions (immutable, manifest with hash) and the Ground Truth job lifecycle
(SageMaker labeling APIs through a botocore Stubber: moto has no labeling jobs)."""

from __future__ import annotations

import hashlib
import json

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.runtime.data_prep import ground_truth as gt
from lambdas.runtime.data_prep.curated import build_curated, write_curated
from lambdas.runtime.data_prep.datasets import latest_version, parse_records, publish_dataset_version, read_dataset_version
from lambdas.runtime.data_prep.enrich import EnrichedDocument
from lambdas.runtime.data_prep.errors import InvalidRecords
from lambdas.runtime.data_prep.textract import Page
from tests.lambdas.data_prep.helpers import ARTIFACTS, DATA, REGION

SETTINGS = gt.LabelingSettings(
    data_bucket=DATA,
    artifacts_bucket=ARTIFACTS,
    role_arn="arn:aws:iam::123456789012:role/labeling",
    workteam_arn="arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/llmops-dev",
    kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    region=REGION,
    qa_pre_lambda_arn="arn:aws:lambda:us-east-1:123456789012:function:qa-pre",
    qa_post_lambda_arn="arn:aws:lambda:us-east-1:123456789012:function:qa-post",
)


def test_versions_are_sequential_immutable_and_hashed(aws) -> None:
    recs = [{"text": "great product", "label": "positive"}, {"text": "broken on arrival", "label": "negative"}]
    v1 = publish_dataset_version(aws["s3"], DATA, dataset="reviews", fmt="text-label", records=recs, sources=["s3://x/a"])
    v2 = publish_dataset_version(aws["s3"], DATA, dataset="reviews", fmt="text-label", records=recs[:1], sources=["s3://x/b"])
    assert (v1.version, v2.version) == (1, 2) and latest_version(aws["s3"], DATA, "reviews") == 2
    manifest, records = read_dataset_version(aws["s3"], DATA, "reviews", 1)
    body = aws["s3"].get_object(Bucket=DATA, Key="datasets/reviews/v1/data.jsonl")["Body"].read()
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest == {**manifest, "schema": "llmops.dataset-manifest/v1", "dataset": "reviews", "version": 1, "format": "text-label", "record_count": 2, "sources": ["s3://x/a"]}
    assert records == recs
    # A writer that lost the race (v1 exists) cannot overwrite it: the conditional put refuses.
    with pytest.raises(Exception, match="PreconditionFailed|At least one of the pre-conditions"):
        aws["s3"].put_object(Bucket=DATA, Key="datasets/reviews/v1/data.jsonl", Body=b"x", IfNoneMatch="*")


def test_bad_records_and_names_are_refused(aws) -> None:
    with pytest.raises(InvalidRecords, match="record 0: missing field"):
        publish_dataset_version(aws["s3"], DATA, dataset="reviews", fmt="text-label", records=[{"text": "x"}], sources=[])
    with pytest.raises(ValueError, match="dataset name"):
        publish_dataset_version(aws["s3"], DATA, dataset="Bad Name", fmt="text-label", records=[{"text": "x", "label": "y"}], sources=[])
    with pytest.raises(InvalidRecords, match="line 1: unknown field"):
        parse_records(['{"text": "a", "label": "b", "extra": 1}'], "upload.jsonl")


def _curate(aws, doc_id: str, pages: list[str]) -> None:
    enriched = EnrichedDocument(pages=[Page(i + 1, t) for i, t in enumerate(pages)], language="en", entity_counts={}, mask="[{type}]")
    write_curated(aws["s3"], DATA, build_curated(document_id=doc_id, source={"bucket": DATA, "key": f"raw/{doc_id}.txt"}, enriched=enriched, extractor="text"))


def _sagemaker():
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_classification_job_from_curated_documents_to_dataset_version(aws) -> None:
    _curate(aws, "faq-1", ["How do I reset my password?", ""])
    _curate(aws, "faq-2", ["Refunds take 5 days.", "Contact [NAME] for help."])
    sm, stub = _sagemaker()
    stub.add_response("create_labeling_job", {"LabelingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/faq-topics"})
    with stub:
        started = gt.start_labeling(
            {"action": "start", "job_name": "faq-topics", "task_type": "text-classification", "labels": ["account", "billing"], "document_ids": ["faq-1", "faq-2"], "dataset": "faq-topics"},
            s3=aws["s3"], sagemaker=sm, settings=SETTINGS,
        )
    assert started["objects"] == 3 and started["automated_labeling"] is False
    manifest = aws["s3"].get_object(Bucket=ARTIFACTS, Key="labeling/faq-topics/input.manifest")["Body"].read().decode().splitlines()
    assert [json.loads(x)["source"] for x in manifest] == ["How do I reset my password?", "Refunds take 5 days.", "Contact [NAME] for help."]
    labels = json.loads(aws["s3"].get_object(Bucket=ARTIFACTS, Key="labeling/faq-topics/labels.json")["Body"].read())
    assert labels == {"document-version": "2018-11-28", "labels": [{"label": "account"}, {"label": "billing"}]}

    output = [
        {"source": "How do I reset my password?", "label": 0, "label-metadata": {"class-name": "account", "confidence": 0.93, "human-annotated": "yes", "type": "groundtruth/text-classification", "job-name": "labeling-job/faq-topics"}},
        {"source": "Refunds take 5 days.", "label": 1, "label-metadata": {"class-name": "billing", "confidence": 0.88, "human-annotated": "yes", "type": "groundtruth/text-classification", "job-name": "labeling-job/faq-topics"}},
        {"source": "Contact [NAME] for help.", "label-metadata": {"failure-reason": "ClientError: worker declined", "type": "groundtruth/text-classification"}},
    ]
    out_key = "labeling/faq-topics/output/faq-topics/manifests/output/output.manifest"
    aws["s3"].put_object(Bucket=ARTIFACTS, Key=out_key, Body="".join(json.dumps(x) + "\n" for x in output).encode())
    sm, stub = _sagemaker()
    stub.add_response(
        "describe_labeling_job",
        {
            "LabelingJobStatus": "Completed",
            "LabelCounters": {"TotalLabeled": 2, "HumanLabeled": 2, "MachineLabeled": 0, "FailedNonRetryableError": 1, "Unlabeled": 0},
            "CreationTime": "2026-11-25T10:00:00Z",
            "LastModifiedTime": "2026-11-25T11:00:00Z",
            "JobReferenceCode": "ref",
            "LabelingJobName": "faq-topics",
            "LabelingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/faq-topics",
            "LabelAttributeName": "label",
            "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": f"s3://{ARTIFACTS}/labeling/faq-topics/input.manifest"}}},
            "OutputConfig": {"S3OutputPath": f"s3://{ARTIFACTS}/labeling/faq-topics/output/"},
            "RoleArn": SETTINGS.role_arn,
            "HumanTaskConfig": {
                "WorkteamArn": SETTINGS.workteam_arn,
                "UiConfig": {"UiTemplateS3Uri": f"s3://{ARTIFACTS}/labeling/faq-topics/template.liquid.html"},
                "PreHumanTaskLambdaArn": "arn:aws:lambda:us-east-1:432418664414:function:PRE-TextMultiClass",
                "TaskTitle": "Classify text",
                "TaskDescription": "d",
                "NumberOfHumanWorkersPerDataObject": 1,
                "TaskTimeLimitInSeconds": 600,
                "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": "arn:aws:lambda:us-east-1:432418664414:function:ACS-TextMultiClass"},
            },
            "Tags": [{"Key": "llmops:task-type", "Value": "text-classification"}, {"Key": "llmops:dataset", "Value": "faq-topics"}],
            "LabelingJobOutput": {"OutputDatasetS3Uri": f"s3://{ARTIFACTS}/{out_key}"},
        },
        {"LabelingJobName": "faq-topics"},
    )
    with stub:
        done = gt.complete_labeling("faq-topics", s3=aws["s3"], sagemaker=sm, settings=SETTINGS)
    assert done == {**done, "published": True, "dataset": "faq-topics", "version": 1, "records": 2, "skipped": 1}
    _, records = read_dataset_version(aws["s3"], DATA, "faq-topics", 1)
    assert records == [{"text": "How do I reset my password?", "label": "account"}, {"text": "Refunds take 5 days.", "label": "billing"}]


def _request(task: str, count: int) -> gt.LabelingJobRequest:
    return gt.LabelingJobRequest(
        job_name="job-1", task_type=task, labels=("a", "b"), manifest_uri="s3://b/m", label_config_uri="s3://b/l", template_uri="s3://b/t",
        output_uri="s3://b/o/", role_arn=SETTINGS.role_arn, workteam_arn=SETTINGS.workteam_arn, kms_key_arn=SETTINGS.kms_key_arn,
        region="eu-west-1", object_count=count, custom_pre_lambda_arn=SETTINGS.qa_pre_lambda_arn, custom_post_lambda_arn=SETTINGS.qa_post_lambda_arn,
    )


def test_automated_labeling_only_for_text_classification_from_1250_objects() -> None:
    big = gt.create_labeling_job_kwargs(_request("text-classification", 5000))
    assert big["LabelingJobAlgorithmsConfig"]["LabelingJobAlgorithmSpecificationArn"] == (
        "arn:aws:sagemaker:eu-west-1:027400017018:labeling-job-algorithm-specification/text-classification"
    )
    assert big["HumanTaskConfig"]["PreHumanTaskLambdaArn"] == "arn:aws:lambda:eu-west-1:568282634449:function:PRE-TextMultiClass"
    assert "LabelingJobAlgorithmsConfig" not in gt.create_labeling_job_kwargs(_request("text-classification", 1249))
    ner = gt.create_labeling_job_kwargs(_request("named-entity-recognition", 5000))
    assert "LabelingJobAlgorithmsConfig" not in ner
    assert ner["HumanTaskConfig"]["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"].endswith("ACS-NamedEntityRecognition")
    qa = gt.create_labeling_job_kwargs(_request("question-answer", 5000))
    assert qa["HumanTaskConfig"]["PreHumanTaskLambdaArn"] == SETTINGS.qa_pre_lambda_arn and "LabelingJobAlgorithmsConfig" not in qa
    with pytest.raises(ValueError, match="not published for region"):
        gt.built_in_lambda_arns("text-classification", "af-south-1")
    with pytest.raises(ValueError, match="allowed: text-classification"):
        gt.create_labeling_job_kwargs(_request("image-classification", 1))


def test_ner_and_qa_outputs_become_instruction_records() -> None:
    ner_line = {
        "source": "Acme hired Bob in Paris.",
        "entities": {"annotations": {"entities": [{"startOffset": 18, "endOffset": 23, "label": "LOC"}, {"startOffset": 0, "endOffset": 4, "label": "ORG"}], "labels": [{"label": "ORG"}, {"label": "LOC"}]}},
        "entities-metadata": {"entities": [{"confidence": 0}, {"confidence": 0}], "job-name": "labeling-job/ner", "type": "groundtruth/text-span", "human-annotated": "yes"},
    }
    fmt, records, skipped = gt.output_to_records("named-entity-recognition", "entities", [json.dumps(ner_line)])
    assert fmt == "instruction" and skipped == 0
    assert json.loads(records[0]["response"]) == [{"label": "ORG", "text": "Acme"}, {"label": "LOC", "text": "Paris"}]

    objects = [
        {"datasetObjectId": "0", "dataObject": {"content": "Refunds take 5 days."}, "annotations": [
            {"workerId": "w1", "annotationData": {"content": json.dumps({"question": "How long do refunds take?", "answer": "5 days."})}},
            {"workerId": "w2", "annotationData": {"content": json.dumps({"question": "", "answer": "x"})}},
        ]},
    ]
    consolidated = gt.consolidate_qa("label", objects)
    assert consolidated[0]["consolidatedAnnotation"]["content"]["label"]["pairs"] == [{"question": "How long do refunds take?", "answer": "5 days.", "worker": "w1"}]
    out = {"source": "Refunds take 5 days.", **consolidated[0]["consolidatedAnnotation"]["content"], "label-metadata": {"type": "groundtruth/custom"}}
    fmt, records, _ = gt.output_to_records("question-answer", "label", [json.dumps(out)])
    assert records == [{"instruction": "How long do refunds take?", "input": "Refunds take 5 days.", "response": "5 days."}]
    assert gt.pre_annotation({"dataObject": {"source": "text"}}) == {"taskInput": {"text": "text"}, "isHumanAnnotationRequired": "true"}
    assert gt.pre_annotation({"dataObject": {"source": " "}})["isHumanAnnotationRequired"] == "false"


def test_labeling_request_is_validated() -> None:
    with pytest.raises(ValueError, match="labeling request: labels: at least one label is required for text-classification"):
        gt.start_labeling({"job_name": "j", "task_type": "text-classification", "document_ids": ["a"], "dataset": "d"}, s3=None, sagemaker=None, settings=SETTINGS)
    with pytest.raises(ValueError, match="labeling request: dataset: Field required"):
        gt.start_labeling({"job_name": "j", "task_type": "question-answer", "document_ids": ["a"]}, s3=None, sagemaker=None, settings=SETTINGS)


def test_job_name_comes_from_the_state_change_events_resources() -> None:
    event = {
        "version": "0", "id": "2b95e9c8-b2fe-ea54-46f4-5a034ca94a6d", "detail-type": "SageMaker Ground Truth Labeling Job State Change",
        "source": "aws.sagemaker", "account": "123456789012", "time": "2026-11-25T07:46:23Z", "region": "us-east-1",
        "resources": ["arn:aws:sagemaker:us-east-1:123456789012:labeling-job/faq-topics"], "detail": {"LabelingJobStatus": "Completed"},
    }
    assert gt.labeling_job_name(event) == "faq-topics"
    with pytest.raises(ValueError, match="names no labeling job"):
        gt.labeling_job_name({"detail": {"LabelingJobStatus": "Completed"}, "resources": []})


def test_labeling_jobs_carry_the_environment_cost_tags(aws, monkeypatch) -> None:
    monkeypatch.setenv("COST_TAGS", '{"environment": "dev", "project": "llmops"}')
    _curate(aws, "faq-1", ["How do I reset my password?"])
    sm, stub = _sagemaker()
    sent = {}
    sm.meta.events.register("provide-client-params.sagemaker.CreateLabelingJob", lambda params, **_: sent.update(params))
    stub.add_response("create_labeling_job", {"LabelingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/t"})
    with stub:
        gt.start_labeling(
            {"action": "start", "job_name": "faq-tags", "task_type": "text-classification", "labels": ["a", "b"],
             "document_ids": ["faq-1"], "dataset": "faq-tags"},
            s3=aws["s3"], sagemaker=sm, settings=SETTINGS,
        )
    assert {"Key": "environment", "Value": "dev"} in sent["Tags"] and {"Key": "project", "Value": "llmops"} in sent["Tags"]
