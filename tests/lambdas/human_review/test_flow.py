"""The flow-definition custom resource against botocore Stubber with the real request/response shapes."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from lambdas.runtime.human_review import flow

ACCOUNT = "123456789012"
PROPS = {
    "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
    "Prefix": "llmops-dev-review",
    "Template": "<crowd-form>{{ task.input.question }}</crowd-form>",
    "WorkteamArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:workteam/private-crowd/llmops-dev-labelers",
    "TaskTitle": "Review an LLM answer",
    "TaskDescription": "Rate the answer and correct it",
    "TaskCount": "1",
    "TaskAvailabilitySeconds": "86400",
    "TaskTimeLimitSeconds": "3600",
    "OutputPath": "s3://llmops-dev-data-123456789012-us-east-1/reviews/",
    "KmsKeyArn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555",
    "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/a2i",
}


@pytest.fixture
def sagemaker():
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def _expect_create(stub, flow_name, ui_name, statuses=("Active",)):
    ui_arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:human-task-ui/{ui_name}"
    flow_arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:flow-definition/{flow_name}"
    stub.add_response("create_human_task_ui", {"HumanTaskUiArn": ui_arn},
                      {"HumanTaskUiName": ui_name, "UiTemplate": {"Content": PROPS["Template"]}})
    stub.add_response("create_flow_definition", {"FlowDefinitionArn": flow_arn}, {
        "FlowDefinitionName": flow_name,
        "HumanLoopConfig": {
            "WorkteamArn": PROPS["WorkteamArn"], "HumanTaskUiArn": ui_arn, "TaskTitle": PROPS["TaskTitle"],
            "TaskDescription": PROPS["TaskDescription"], "TaskCount": 1,
            "TaskAvailabilityLifetimeInSeconds": 86400, "TaskTimeLimitInSeconds": 3600,
        },
        "OutputConfig": {"S3OutputPath": PROPS["OutputPath"], "KmsKeyId": PROPS["KmsKeyArn"]},
        "RoleArn": PROPS["RoleArn"],
    })
    for status in statuses:
        stub.add_response("describe_flow_definition", {
            "FlowDefinitionArn": flow_arn, "FlowDefinitionName": flow_name, "FlowDefinitionStatus": status,
            "CreationTime": "2026-12-02T00:00:00Z", "OutputConfig": {"S3OutputPath": PROPS["OutputPath"]},
            "RoleArn": PROPS["RoleArn"], "HumanLoopConfig": {
                "WorkteamArn": PROPS["WorkteamArn"], "HumanTaskUiArn": ui_arn, "TaskTitle": "t",
                "TaskDescription": "d", "TaskCount": 1},
        }, {"FlowDefinitionName": flow_name})
    return flow_arn, ui_arn


def test_names_are_derived_from_content_and_valid():
    a = flow.names_for(PROPS["Prefix"], PROPS)
    assert a == flow.names_for(PROPS["Prefix"], dict(PROPS))
    assert a != flow.names_for(PROPS["Prefix"], {**PROPS, "TaskCount": "2"})
    import re

    for name in a:
        assert re.fullmatch(r"[a-z0-9](-*[a-z0-9]){0,62}", name), name


def test_create_waits_for_active_and_returns_the_arns(sagemaker):
    client, stub = sagemaker
    flow_name, ui_name = flow.names_for(PROPS["Prefix"], {k: v for k, v in PROPS.items() if k != "ServiceToken"})
    flow_arn, ui_arn = _expect_create(stub, flow_name, ui_name, statuses=("Initializing", "Active"))
    result = flow.handle({"RequestType": "Create", "ResourceProperties": PROPS}, client, sleep=lambda s: None)
    assert result["PhysicalResourceId"] == flow_name
    assert result["Data"]["FlowDefinitionArn"] == flow_arn and result["Data"]["HumanTaskUiArn"] == ui_arn


def test_a_failed_flow_definition_fails_the_deploy_with_its_reason(sagemaker):
    client, stub = sagemaker
    flow_name, ui_name = flow.names_for(PROPS["Prefix"], {k: v for k, v in PROPS.items() if k != "ServiceToken"})
    _expect_create(stub, flow_name, ui_name, statuses=("Failed",))
    with pytest.raises(flow.FlowError, match=f"flow definition {flow_name} failed"):
        flow.handle({"RequestType": "Create", "ResourceProperties": PROPS}, client, sleep=lambda s: None)


def test_an_update_creates_a_new_pair_under_a_new_name(sagemaker):
    client, stub = sagemaker
    old, _ = flow.names_for(PROPS["Prefix"], {k: v for k, v in PROPS.items() if k != "ServiceToken"})
    changed = {**PROPS, "TaskTitle": "Review an LLM answer (v2)"}
    new, new_ui = flow.names_for(PROPS["Prefix"], {k: v for k, v in changed.items() if k != "ServiceToken"})
    ui_arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:human-task-ui/{new_ui}"
    stub.add_response("create_human_task_ui", {"HumanTaskUiArn": ui_arn}, {"HumanTaskUiName": new_ui, "UiTemplate": ANY})
    stub.add_response("create_flow_definition", {"FlowDefinitionArn": "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/" + new},
                      {"FlowDefinitionName": new, "HumanLoopConfig": ANY, "OutputConfig": ANY, "RoleArn": ANY})
    stub.add_response("describe_flow_definition", {
        "FlowDefinitionArn": "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/" + new, "FlowDefinitionName": new,
        "FlowDefinitionStatus": "Active", "CreationTime": "2026-12-02T00:00:00Z",
        "OutputConfig": {"S3OutputPath": PROPS["OutputPath"]}, "RoleArn": PROPS["RoleArn"],
        "HumanLoopConfig": {"WorkteamArn": PROPS["WorkteamArn"], "HumanTaskUiArn": ui_arn, "TaskTitle": "t", "TaskDescription": "d", "TaskCount": 1},
    }, {"FlowDefinitionName": new})
    result = flow.handle({"RequestType": "Update", "PhysicalResourceId": old, "ResourceProperties": changed,
                          "OldResourceProperties": PROPS}, client, sleep=lambda s: None)
    assert result["PhysicalResourceId"] == new != old  # CloudFormation then deletes `old`


def test_delete_removes_both_and_tolerates_a_pair_already_gone(sagemaker):
    client, stub = sagemaker
    stub.add_response("delete_flow_definition", {}, {"FlowDefinitionName": "llmops-dev-review-flow-abc"})
    stub.add_client_error("delete_human_task_ui", service_error_code="ResourceNotFound", http_status_code=404,
                          expected_params={"HumanTaskUiName": "llmops-dev-review-ui-abc"})
    assert flow.handle({"RequestType": "Delete", "PhysicalResourceId": "llmops-dev-review-flow-abc"}, client) == {
        "PhysicalResourceId": "llmops-dev-review-flow-abc"}


def test_delete_after_a_failed_create_does_nothing(sagemaker):
    client, _ = sagemaker
    assert flow.handle({"RequestType": "Delete", "PhysicalResourceId": "2026/12/02/[$LATEST]abc"}, client)
