"""Building a release from the source account: model packages on moto, prompt aliases on moto DynamoDB."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from lambdas.runtime.delivery.release_build import ReleaseBuildError, build_release
from lambdas.runtime.prompt_catalog.store import PromptCatalogStore
from llmops.delivery.release import parse_release

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield


def _packages(sm, s3, group, statuses):
    sm.create_model_package_group(ModelPackageGroupName=group)
    s3.create_bucket(Bucket="artifacts")
    for i, status in enumerate(statuses, start=1):
        key = f"eval/{i}/evaluation.json"
        s3.put_object(Bucket="artifacts", Key=key, Body=json.dumps({"metrics": {"rouge_l": 0.1 * i, "note": "x"}}))
        sm.create_model_package(
            ModelPackageGroupName=group, ModelApprovalStatus=status,
            InferenceSpecification={"Containers": [{"Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/tgi:1"}],
                                    "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]},
            ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://artifacts/{key}"}}},
        )


def _catalog(ddb):
    from tests.lambdas.prompt_catalog.conftest import create_catalog_table  # the catalog's real table layout

    create_catalog_table(ddb, "catalog")
    return PromptCatalogStore("catalog", dynamodb=ddb)


def test_the_newest_approved_package_is_pinned_not_the_oldest(aws):
    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    _packages(sm, s3, "llmops-dev-assistant", ["Approved", "Approved", "PendingManualApproval"])
    manifest, warnings = build_release(
        name="r1", source_environment="dev", sagemaker=sm, s3=s3, prompt_store=None,
        package_groups={"assistant": "llmops-dev-assistant"}, prompt_aliases={},
    )
    pin = manifest["models"]["assistant"]
    assert pin["version"] == 2 and pin["model_package_arn"].endswith("/llmops-dev-assistant/2")
    assert pin["metrics"] == {"rouge_l": pytest.approx(0.2)}
    parse_release(manifest)  # the built manifest passes the schema


def test_no_approved_package_says_how_to_approve(aws):
    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    _packages(sm, s3, "llmops-dev-assistant", ["PendingManualApproval"])
    with pytest.raises(ReleaseBuildError, match="no Approved package; approve one"):
        build_release(name="r", source_environment="dev", sagemaker=sm, prompt_store=None,
                      package_groups={"assistant": "llmops-dev-assistant"}, prompt_aliases={})


def test_prompt_aliases_are_pinned_with_their_content_hash(aws):
    from lambdas.runtime.prompt_catalog.files import load_prompt_dir
    from llmops.config import REPO_ROOT

    ddb = boto3.client("dynamodb")
    store = _catalog(ddb)
    prompt = next(f for f in load_prompt_dir(REPO_ROOT / "prompts").files if f.prompt_id == "rag-answer")
    version, _ = store.create_version("rag-answer", prompt.content, change_note="first", author="test")
    store.move_alias("rag-answer", "prod", [{"version": version.version, "weight": 100}], expected_revision=0)
    manifest, warnings = build_release(
        name="r", source_environment="dev", sagemaker=boto3.client("sagemaker"), prompt_store=store,
        package_groups={}, prompt_aliases={"rag-answer": ["prod"]},
    )
    assert manifest["prompts"]["rag-answer"]["prod"] == {"version": 1, "content_hash": prompt.content.content_hash()}
    assert warnings == []
