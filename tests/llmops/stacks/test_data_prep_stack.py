"""DataPrepStack: the state machine definition (states, retries with backoff, catch paths to
quarantine), the S3 -> EventBridge -> Step Functions wiring, least-privilege roles, workteam."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.helpers import config_with, make_app, synth_stage, template_of

ONLY_DATA_PREP = {"capabilities": {"rag": False, "prompt_catalog": False, "fine_tuning": False, "human_review": False}}
CLASSIFIER = "arn:aws:comprehend:us-east-1:111111111111:document-classifier-endpoint/contracts"


@pytest.fixture(scope="module")
def dev():
    return template_of(synth_stage("dev", ONLY_DATA_PREP).data_prep)


@pytest.fixture(scope="module")
def variant():
    overrides = {
        **ONLY_DATA_PREP,
        "data_prep": {
            "textract_features": [],
            "pii_entity_types": ["NAME", "EMAIL"],
            "mask": "***",
            "custom_classifier_endpoint_arn": CLASSIFIER,
            "extraction_timeout_minutes": 30,
            "workteam": {"enabled": False},
        },
    }
    return template_of(synth_stage("dev", overrides).data_prep)


def _definition(template) -> dict[str, Any]:
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    body = machine["Properties"]["DefinitionString"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    # Tokens (function ARNs) sit inside JSON strings: any placeholder keeps the JSON valid.
    return json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts))


def test_states_and_flow(dev) -> None:
    d = _definition(dev)
    states = d["States"]
    assert d["StartAt"] == "Validate"
    assert set(states) == {"Validate", "NeedsTextract", "Extract", "Enrich", "CustomStep", "Publish", "Prepared", "Quarantine", "Quarantined"}
    assert states["Validate"]["Next"] == "NeedsTextract"
    choice = states["NeedsTextract"]
    assert choice["Type"] == "Choice" and choice["Default"] == "Enrich"
    assert choice["Choices"] == [{"Variable": "$.document.kind", "StringEquals": "textract", "Next": "Extract"}]
    assert [states[s]["Next"] for s in ("Extract", "Enrich", "CustomStep", "Publish")] == ["Enrich", "CustomStep", "Publish", "Prepared"]
    assert states["Quarantine"]["Next"] == "Quarantined" and states["Quarantined"]["Type"] == "Succeed"


@pytest.mark.parametrize(("state", "result_path"), [("Validate", "$.document"), ("Enrich", "$.enriched"), ("Publish", "$.published")])
def test_steps_get_the_whole_state_and_add_their_result(dev, state: str, result_path: str) -> None:
    s = _definition(dev)["States"][state]
    assert "Parameters" not in s and "InputPath" not in s, "the function must receive the S3 event and earlier results"
    assert s["ResultPath"] == result_path and s["Resource"] == "TOKEN"  # the function ARN: response payload only


def test_extract_waits_for_the_textract_task_token(dev) -> None:
    extract = _definition(dev)["States"]["Extract"]
    assert extract["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert extract["Parameters"]["Payload"] == {"document.$": "$.document", "task_token.$": "$$.Task.Token", "execution_id.$": "$$.Execution.Id"}
    assert extract["TimeoutSeconds"] == 120 * 60 and extract["ResultPath"] == "$.extraction"


@pytest.mark.parametrize("state", ["Validate", "Extract", "Enrich", "CustomStep", "Publish"])
def test_every_step_retries_throttling_with_backoff_and_catches_to_quarantine(dev, state: str) -> None:
    s = _definition(dev)["States"][state]
    throttling = [r for r in s["Retry"] if "ServiceThrottled" in r["ErrorEquals"]]
    assert throttling == [
        {
            "ErrorEquals": ["ServiceThrottled", "Lambda.TooManyRequestsException"],
            "IntervalSeconds": 5,
            "MaxAttempts": 6,
            "BackoffRate": 2,
            "MaxDelaySeconds": 300,
            "JitterStrategy": "FULL",
        }
    ]
    assert s["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Quarantine"}]


def test_quarantine_gets_the_input_the_error_and_the_execution(dev) -> None:
    q = _definition(dev)["States"]["Quarantine"]
    # payload_response_only: the Lambda is the Resource and Parameters is its event.
    assert q["Parameters"] == {"input.$": "$", "error.$": "$.error", "execution_id.$": "$$.Execution.Id"}
    assert "Catch" not in q, "a failing quarantine must fail the execution (and raise the alarm)"
    assert any("ServiceThrottled" in r["ErrorEquals"] for r in q["Retry"])


def test_state_machine_is_standard_traced_logged_and_encrypted(dev) -> None:
    dev.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like({"Level": "ALL"}),
            "EncryptionConfiguration": Match.object_like({"Type": "CUSTOMER_MANAGED_KMS_KEY"}),
        },
    )
    logs = dev.find_resources("AWS::Logs::LogGroup")
    assert logs and all("KmsKeyId" in r["Properties"] for r in logs.values())


def test_raw_uploads_start_the_workflow_with_a_dead_letter_queue(dev) -> None:
    dev.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": Match.any_value()}, "object": {"key": [{"prefix": "raw/"}]}},
            },
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Ref": Match.string_like_regexp("WorkflowStateMachine")},
                        "DeadLetterConfig": {"Arn": Match.any_value()},
                        "RetryPolicy": {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 86400},
                    }
                )
            ],
        },
    )
    queues = dev.find_resources("AWS::SQS::Queue")
    assert queues and all("KmsMasterKeyId" in q["Properties"] for q in queues.values())


def test_alarms_on_failed_executions_and_dead_letters(dev) -> None:
    alarms = dev.find_resources("AWS::CloudWatch::Alarm")
    exprs = [m.get("Expression") for a in alarms.values() for m in a["Properties"].get("Metrics", [])]
    assert "failed + timedout + aborted" in exprs
    names = {m["MetricStat"]["Metric"]["MetricName"] for a in alarms.values() for m in a["Properties"].get("Metrics", []) if "MetricStat" in m}
    assert {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"} <= names
    assert any(a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible" for a in alarms.values())
    assert all(a["Properties"].get("AlarmActions") for a in alarms.values())


def test_textract_topic_is_encrypted_and_its_role_only_publishes(dev) -> None:
    topics = dev.find_resources("AWS::SNS::Topic")
    assert topics and all("KmsMasterKeyId" in t["Properties"] for t in topics.values())
    dev.has_resource_properties(
        "AWS::IAM::Role",
        {"AssumeRolePolicyDocument": Match.object_like({"Statement": [Match.object_like({"Principal": {"Service": "textract.amazonaws.com"}})]})},
    )


def _statements(template) -> list[tuple[str, dict]]:
    out = []
    for logical_id, policy in template.find_resources("AWS::IAM::Policy").items():
        for s in policy["Properties"]["PolicyDocument"]["Statement"]:
            out.append((logical_id, s))
    return out


def _actions(s: dict) -> list[str]:
    return s["Action"] if isinstance(s["Action"], list) else [s["Action"]]


def test_no_role_can_change_or_delete_raw_objects(dev) -> None:
    for _, s in _statements(dev):
        actions = _actions(s)
        assert "s3:DeleteObject" not in actions and "s3:DeleteObjectVersion" not in actions
        assert not any(a == "*" or a.endswith(":*") for a in actions), f"wildcard action {actions}"
        if "s3:PutObject" in actions:
            resources = json.dumps(s["Resource"])
            assert "/raw/" not in resources and '"*"' not in resources, resources


def test_comprehend_and_textract_rights_sit_with_their_steps_only(dev) -> None:
    holders: dict[str, set[str]] = {}
    for logical_id, s in _statements(dev):
        for a in _actions(s):
            if a.startswith(("comprehend:", "textract:", "states:SendTask")):
                holders.setdefault(a, set()).add(logical_id)
    assert all(h.startswith("RedactionComprehendDetectPolicy") for h in holders["comprehend:DetectPiiEntities"])
    assert all(h.startswith("ExtractionStartTextractPolicy") for h in holders["textract:StartDocumentAnalysis"])
    assert all(h.startswith("ExtractionGetTextractPolicy") for h in holders["textract:GetDocumentAnalysis"])
    assert all(h.startswith("ExtractionResultFunctionRole") for h in holders["states:SendTaskSuccess"])


def test_workteam_uses_a_cognito_pool_with_mfa(dev) -> None:
    dev.has_resource_properties(
        "AWS::SageMaker::Workteam",
        {
            "WorkteamName": "llmops-dev-labeling",
            "MemberDefinitions": [{"CognitoMemberDefinition": {"CognitoUserPool": Match.any_value(), "CognitoClientId": Match.any_value(), "CognitoUserGroup": Match.any_value()}}],
        },
    )
    dev.has_resource_properties("AWS::Cognito::UserPool", {"MfaConfiguration": "ON", "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True}})
    dev.has_resource_properties(
        "AWS::Events::Rule",
        {"EventPattern": {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Ground Truth Labeling Job State Change"], "detail": {"LabelingJobStatus": ["Completed"]}}},
    )


def test_config_drives_features_redaction_classifier_and_workteam(dev, variant) -> None:
    def env_of(template, entry: str) -> dict:
        for fn in template.find_resources("AWS::Lambda::Function").values():
            if fn["Properties"]["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME") == entry:
                return fn["Properties"]["Environment"]["Variables"]
        raise AssertionError(entry)

    assert env_of(dev, "data_prep_extract_start")["TEXTRACT_FEATURES"] == "LAYOUT,TABLES"
    assert env_of(variant, "data_prep_extract_start")["TEXTRACT_FEATURES"] == ""
    enrich = env_of(variant, "data_prep_enrich")
    assert (enrich["PII_ENTITY_TYPES"], enrich["PII_MASK"], enrich["CLASSIFIER_ENDPOINT_ARN"]) == ("NAME,EMAIL", "***", CLASSIFIER)
    assert _definition(variant)["States"]["Extract"]["TimeoutSeconds"] == 30 * 60
    classify = [s for _, s in _statements(variant) if "comprehend:ClassifyDocument" in _actions(s)]
    assert [s["Resource"] for s in classify] == [CLASSIFIER]
    variant.resource_count_is("AWS::SageMaker::Workteam", 0)
    variant.resource_count_is("AWS::Cognito::UserPool", 0)


@pytest.mark.synth
def test_synth_passes_cdk_nag(tmp_path) -> None:
    """cdk-nag AwsSolutions fails synth on any unacknowledged finding in the data-prep stack."""
    from llmops.stage import LlmOpsStage

    app = make_app(outdir=str(tmp_path))
    LlmOpsStage(app, config_with("dev", ONLY_DATA_PREP).get("dev"), nag=True)
    app.synth()  # raises ValidationFailed with the report on any finding
