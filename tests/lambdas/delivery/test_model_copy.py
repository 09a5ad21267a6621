"""Cross-account model promotion by copy, on moto SageMaker/S3/SSM with the API's request shapes."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from lambdas.runtime.delivery.model_copy import (
    SOURCE_ARN_PROPERTY,
    ModelCopyError,
    copied_package_parameter,
    copy_model_package,
)

REGION = "us-east-1"
SOURCE_BUCKET = "llmops-dev-artifacts-123456789012-us-east-1"
TARGET_BUCKET = "llmops-stg-artifacts-123456789012-us-east-1"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi2.3.1-gpu-py311-cu124-ubuntu22.04"


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sm, s3, ssm = (boto3.client(n, region_name=REGION) for n in ("sagemaker", "s3", "ssm"))
        for bucket in (SOURCE_BUCKET, TARGET_BUCKET):
            s3.create_bucket(Bucket=bucket)
        for key in ("fine-tuning/run-1/model/config.json", "fine-tuning/run-1/model/model.safetensors", "fine-tuning/run-1/other/x"):
            s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=f"bytes of {key}".encode())
        sm.create_model_package_group(ModelPackageGroupName="llmops-dev-assistant")
        sm.create_model_package_group(ModelPackageGroupName="llmops-stg-assistant")
        source = sm.create_model_package(
            ModelPackageGroupName="llmops-dev-assistant",
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "Environment": {"HF_MODEL_ID": "/opt/ml/model"},
                                "ModelDataSource": {"S3DataSource": {"S3Uri": f"s3://{SOURCE_BUCKET}/fine-tuning/run-1/model/",
                                                                     "S3DataType": "S3Prefix", "CompressionType": "None"}}}],
                "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"],
                "SupportedRealtimeInferenceInstanceTypes": ["ml.g5.2xlarge"],
            },
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties={"rouge_l": "0.4"},
        )["ModelPackageArn"]
        yield sm, s3, ssm, source


def copy(sm, s3, ssm, source):
    return copy_model_package(
        source_arn=source, source_sagemaker=sm, source_s3=s3, target_sagemaker=sm, target_s3=s3, target_ssm=ssm,
        target_group="llmops-stg-assistant", target_bucket=TARGET_BUCKET,
        parameter_name=copied_package_parameter("llmops-stg", "assistant", source),
    )


def test_copy_registers_the_package_with_copied_artifacts_and_records_the_parameter(aws):
    sm, s3, ssm, source = aws
    arn, created = copy(sm, s3, ssm, source)
    assert created and ":model-package/llmops-stg-assistant/1" in arn
    described = sm.describe_model_package(ModelPackageName=arn)
    (container,) = described["InferenceSpecification"]["Containers"]
    uri = container["ModelDataSource"]["S3DataSource"]["S3Uri"]
    assert uri == f"s3://{TARGET_BUCKET}/promoted/123456789012/llmops-dev-assistant/1/container-0/"
    assert container["Image"] == IMAGE and container["Environment"] == {"HF_MODEL_ID": "/opt/ml/model"}
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"][SOURCE_ARN_PROPERTY] == source
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=TARGET_BUCKET)["Contents"])
    assert keys == [f"promoted/123456789012/llmops-dev-assistant/1/container-0/{n}" for n in ("config.json", "model.safetensors")]
    body = s3.get_object(Bucket=TARGET_BUCKET, Key=keys[1])["Body"].read()
    assert body == b"bytes of fine-tuning/run-1/model/model.safetensors"
    name = copied_package_parameter("llmops-stg", "assistant", source)
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == arn


def test_a_second_run_reuses_the_copy(aws):
    sm, s3, ssm, source = aws
    first, _ = copy(sm, s3, ssm, source)
    second, created = copy(sm, s3, ssm, source)
    assert second == first and not created
    listed = sm.list_model_packages(ModelPackageGroupName="llmops-stg-assistant")["ModelPackageSummaryList"]
    assert len(listed) == 1


def test_an_unapproved_source_is_refused(aws):
    sm, s3, ssm, source = aws
    sm.update_model_package(ModelPackageArn=source, ModelApprovalStatus="Rejected")
    with pytest.raises(ModelCopyError, match="is Rejected, not Approved"):
        copy(sm, s3, ssm, source)


def test_an_empty_model_prefix_is_refused(aws):
    sm, s3, ssm, _ = aws
    empty = sm.create_model_package(
        ModelPackageGroupName="llmops-dev-assistant", ModelApprovalStatus="Approved",
        InferenceSpecification={"Containers": [{"Image": IMAGE, "ModelDataSource": {"S3DataSource": {
            "S3Uri": f"s3://{SOURCE_BUCKET}/fine-tuning/missing/", "S3DataType": "S3Prefix", "CompressionType": "None"}}}],
            "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]})["ModelPackageArn"]
    with pytest.raises(ModelCopyError, match="no objects under the package's model data prefix"):
        copy(sm, s3, ssm, empty)


def test_the_create_request_has_the_api_shape():
    """Stubber checks the CreateModelPackage request against the service model (moto accepts more)."""
    source = "arn:aws:sagemaker:us-east-1:444444444444:model-package/llmops-dev-assistant/3"
    sm = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    ssm = boto3.client("ssm", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    target = "arn:aws:sagemaker:us-east-1:111111111111:model-package/llmops-stg-assistant/1"
    with Stubber(sm) as stub_sm, Stubber(s3) as stub_s3, Stubber(ssm) as stub_ssm:
        stub_sm.add_response("describe_model_package", {
            "ModelPackageName": "llmops-dev-assistant", "ModelPackageArn": source, "ModelPackageStatus": "Completed",
            "CreationTime": "2026-12-01T00:00:00Z", "ModelApprovalStatus": "Approved",
            "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
            "InferenceSpecification": {"Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{SOURCE_BUCKET}/fine-tuning/r/model.tar.gz"}],
                                       "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]},
        }, {"ModelPackageName": source})
        stub_sm.add_response("list_model_packages", {"ModelPackageSummaryList": []}, {
            "ModelPackageGroupName": "llmops-stg-assistant", "ModelApprovalStatus": "Approved",
            "SortBy": "CreationTime", "SortOrder": "Descending"})
        stub_s3.add_response("head_object", {"ContentLength": 5}, {"Bucket": SOURCE_BUCKET, "Key": "fine-tuning/r/model.tar.gz"})
        stub_s3.add_response("copy_object", {}, {
            "Bucket": TARGET_BUCKET, "Key": "promoted/444444444444/llmops-dev-assistant/3/container-0/model.tar.gz",
            "CopySource": {"Bucket": SOURCE_BUCKET, "Key": "fine-tuning/r/model.tar.gz"}})
        stub_sm.add_response("create_model_package", {"ModelPackageArn": target}, {
            "ModelPackageGroupName": "llmops-stg-assistant",
            "ModelPackageDescription": f"Copy of {source}",
            "InferenceSpecification": {
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{TARGET_BUCKET}/promoted/444444444444/"
                                                                "llmops-dev-assistant/3/container-0/model.tar.gz"}],
                "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]},
            "ModelApprovalStatus": "Approved",
            "CustomerMetadataProperties": {SOURCE_ARN_PROPERTY: source},
        })
        name = copied_package_parameter("llmops-stg", "assistant", source)
        stub_ssm.add_response("put_parameter", {"Version": 1}, {
            "Name": name, "Value": target, "Type": "String", "Overwrite": True, "Description": f"copy of {source}"})
        arn, created = copy_model_package(
            source_arn=source, source_sagemaker=sm, source_s3=s3, target_sagemaker=sm, target_s3=s3, target_ssm=ssm,
            target_group="llmops-stg-assistant", target_bucket=TARGET_BUCKET, parameter_name=name)
        assert (arn, created) == (target, True)
        stub_sm.assert_no_pending_responses()
