"""Data-prep stack fixes of issue 10: execution timeout from config, workteam import, raw/ protection."""

from __future__ import annotations

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_

from llmops.constructs.data_prep.workflow import STEPS_ALLOWANCE_MINUTES, DataPrepWorkflow
from tests.helpers import synth_stage, template_of
from tests.llmops.stacks.test_data_prep_stack import ONLY_DATA_PREP, _definition


@pytest.mark.parametrize("minutes", [5, 120, 1440])
def test_execution_outlives_the_longest_textract_wait(minutes: int) -> None:
    overrides = {**ONLY_DATA_PREP, "data_prep": {"extraction_timeout_minutes": minutes}}
    d = _definition(template_of(synth_stage("dev", overrides).data_prep))
    assert d["States"]["Extract"]["TimeoutSeconds"] == minutes * 60
    assert d["TimeoutSeconds"] == (minutes + STEPS_ALLOWANCE_MINUTES) * 60


def test_an_execution_timeout_shorter_than_the_wait_is_refused() -> None:
    stack = Stack(App(), "S")
    fn = lambda_.Function.from_function_arn(stack, "F", "arn:aws:lambda:us-east-1:123456789012:function:f")
    with pytest.raises(ValueError, match=r"execution_timeout: 360 min must be at least the extraction timeout plus 120 min \(1560 min\)"):
        DataPrepWorkflow(
            stack, "W", key=kms.Key(stack, "K"), validate=fn, extract_start=fn, enrich=fn, custom_step=fn, publish=fn,
            quarantine=fn, extraction_timeout=Duration.minutes(1440), execution_timeout=Duration.hours(6),
        )


TEAM_ARN = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/labelers"
WORKFORCE = {"user_pool_id": "us-east-1_AbCdEf123", "client_id": "4abc5def6ghi7jkl"}


def _labeling(overrides: dict):
    return template_of(synth_stage("dev", {**ONLY_DATA_PREP, "data_prep": {"workteam": overrides}}).data_prep)


def test_an_existing_workteam_is_used_as_is() -> None:
    t = _labeling({"existing_workteam_arn": TEAM_ARN})
    t.resource_count_is("AWS::SageMaker::Workteam", 0)
    t.resource_count_is("AWS::Cognito::UserPool", 0)
    t.resource_count_is("AWS::Cognito::UserPoolGroup", 0)
    env = [f["Properties"]["Environment"]["Variables"] for f in t.find_resources("AWS::Lambda::Function").values()
           if "WORKTEAM_ARN" in f["Properties"].get("Environment", {}).get("Variables", {})]
    assert env and env[0]["WORKTEAM_ARN"] == TEAM_ARN


def test_an_existing_workforce_gets_a_new_team_and_group_but_no_pool() -> None:
    t = _labeling({"existing_workforce": WORKFORCE})
    t.resource_count_is("AWS::Cognito::UserPool", 0)
    (group,) = t.find_resources("AWS::Cognito::UserPoolGroup").values()
    assert group["Properties"]["UserPoolId"] == WORKFORCE["user_pool_id"]
    (team,) = t.find_resources("AWS::SageMaker::Workteam").values()
    member = team["Properties"]["MemberDefinitions"][0]["CognitoMemberDefinition"]
    assert (member["CognitoUserPool"], member["CognitoClientId"]) == (WORKFORCE["user_pool_id"], WORKFORCE["client_id"])


@pytest.mark.parametrize(
    ("workteam", "message"),
    [
        ({"existing_workteam_arn": "arn:aws:sagemaker:us-east-1:123456789012:workteam/public-crowd/x"}, r"\.existing_workteam_arn: must be a private workteam ARN"),
        ({"existing_workteam_arn": TEAM_ARN, "existing_workforce": WORKFORCE}, r": existing_workteam_arn and existing_workforce: set one"),
        ({"existing_workteam_arn": TEAM_ARN, "notify_workers": True}, r": notify_workers: an imported workteam keeps its own notification settings"),
        ({"existing_workforce": {**WORKFORCE, "user_pool_id": "pool-1"}}, r"\.existing_workforce\.user_pool_id: must be a Cognito user pool id"),
        ({"existing_workforce": {"user_pool_id": WORKFORCE["user_pool_id"]}}, r"\.existing_workforce\.client_id: Field required"),
    ],
)
def test_bad_workteam_import_names_the_field(workteam: dict, message: str) -> None:
    from llmops.config import ConfigError
    from tests.helpers import config_with

    with pytest.raises(ConfigError, match=r"environments\.dev\.data_prep\.workteam" + message):
        config_with("dev", {"data_prep": {"workteam": workteam}})


@pytest.mark.parametrize(
    ("data_prep", "message"),
    [
        ({"raw_retention_days": 0}, r"data_prep\.raw_retention_days: Input should be greater than or equal to 1"),
        ({"object_lock": {"enabled": True, "mode": "LEGAL"}}, r"data_prep\.object_lock\.mode: got 'LEGAL'; allowed: 'GOVERNANCE' or 'COMPLIANCE'"),
    ],
)
def test_bad_raw_protection_settings_name_the_field(data_prep: dict, message: str) -> None:
    from llmops.config import ConfigError
    from tests.helpers import config_with

    with pytest.raises(ConfigError, match=message):
        config_with("dev", {"data_prep": data_prep})
