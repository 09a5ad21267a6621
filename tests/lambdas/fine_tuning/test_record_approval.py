"""Recording approved model packages in SSM (moto), through the real Lambda handler."""

from __future__ import annotations

import importlib
import json

import boto3
import pytest
from moto import mock_aws

from lambdas.runtime.fine_tuning import approval

GROUP = "llmops-dev-assistant"
PARAM = approval.approved_model_parameter_name("llmops-dev", "assistant")


def event(version: int = 3, status: str = "Approved", group: str = GROUP, detail_type: str = approval.DETAIL_TYPE) -> dict:
    # Shape of the EventBridge "SageMaker Model Package State Change" event.
    return {
        "version": "0",
        "id": "1c2b3a4d-0000-0000-0000-000000000000",
        "detail-type": detail_type,
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-11-25T10:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/{version}"],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/{version}",
            "ModelApprovalStatus": status,
            "ModelPackageStatus": "Completed",
        },
    }


@pytest.fixture
def ssm():
    # No parameter exists before the first approval: the stack does not create it (issue 10).
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


def test_first_approval_creates_the_parameter(ssm):
    assert approval.current_version(ssm, PARAM) == 0
    assert approval.record(event(1), ssm, {GROUP: PARAM})["recorded"] is True
    assert ssm.get_parameter(Name=PARAM)["Parameter"]["Value"].endswith(f"model-package/{GROUP}/1")


def test_parameter_name_is_deterministic():
    assert PARAM == "/llmops-dev/fine-tuning/assistant/approved-model-package-arn"


def test_approved_package_is_recorded_and_older_ones_do_not_roll_back(ssm):
    result = approval.record(event(3), ssm, {GROUP: PARAM})
    assert result["recorded"] is True
    assert ssm.get_parameter(Name=PARAM)["Parameter"]["Value"].endswith(f"model-package/{GROUP}/3")
    older = approval.record(event(2), ssm, {GROUP: PARAM})
    assert older["recorded"] is False and "older than recorded version 3" in older["reason"]
    assert ssm.get_parameter(Name=PARAM)["Parameter"]["Value"].endswith("/3")
    assert approval.record(event(4), ssm, {GROUP: PARAM})["recorded"] is True


@pytest.mark.parametrize(
    "bad, message",
    [
        (event(status="Rejected"), "only Approved packages"),
        (event(group="someone-elses-group"), "is not one of"),
        (event(detail_type="SageMaker Endpoint State Change"), "detail-type"),
        ({**event(), "detail": {**event()["detail"], "ModelPackageArn": "arn:aws:s3:::x"}}, "not a versioned model package ARN"),
    ],
)
def test_unexpected_events_raise_with_the_reason(ssm, bad, message):
    with pytest.raises(approval.ApprovalEventError, match=message):
        approval.record(bad, ssm, {GROUP: PARAM})
    assert approval.current_version(ssm, PARAM) == 0  # nothing was written


def test_environment_mapping_is_validated():
    assert approval.parameters_from_env(json.dumps({GROUP: PARAM})) == {GROUP: PARAM}
    with pytest.raises(approval.ApprovalEventError):
        approval.parameters_from_env("")


def test_handler_records_through_powertools(ssm, monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setenv("APPROVAL_PARAMETERS", json.dumps({GROUP: PARAM}))
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LLMOps")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    module = importlib.import_module("lambdas.fine_tuning_record_approval.handler")
    module = importlib.reload(module)
    context = SimpleNamespace(function_name="f", memory_limit_in_mb=256, invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:f", aws_request_id="r")
    result = module.handler(event(7), context)
    assert result["recorded"] is True
    assert ssm.get_parameter(Name=PARAM)["Parameter"]["Value"].endswith("/7")
