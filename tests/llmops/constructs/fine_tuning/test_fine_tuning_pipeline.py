"""FineTuningPipeline and ModelRegistry props validation, on a bare stack."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from llmops.constructs.fine_tuning.pipeline import FineTuningPipeline, definition_parameters
from llmops.constructs.fine_tuning.model_registry import ModelRegistry
from pipelines.code_archive import write_code_archive
from tests.helpers import make_app

DEFINITION = json.dumps({
    "Version": "2020-12-01",
    "Parameters": [{"Name": "DatasetName", "Type": "String", "DefaultValue": "toy"}],
    "Steps": [{"Name": "Train", "Type": "Training", "Arguments": {"RoleArn": "${RoleArn}", "VpcConfig": {"Subnets": ["${SubnetIds}"]}}}],
})


@pytest.fixture
def stack(tmp_path):
    stack = Stack(make_app(), "T")
    stack.role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    stack.code = s3_assets.Asset(stack, "Code", path=str(write_code_archive(tmp_path)))
    return stack


def _pipeline(stack, **overrides):
    props = dict(
        pipeline_name="p-ft-toy", definition=DEFINITION, role=stack.role, artifacts_bucket_name="a", data_bucket_name="d",
        key_arn="arn:aws:kms:us-east-1:1:key/x", code=stack.code, subnet_ids=["subnet-1", "subnet-2", "subnet-3"],
        security_group_id="sg-1",
    )
    props.update(overrides)
    return FineTuningPipeline(stack, "P", **props)


def test_subnet_placeholder_expands_per_subnet_and_only_used_variables_are_passed(stack):
    pipeline = _pipeline(stack)
    props = Template.from_stack(stack).find_resources("AWS::SageMaker::Pipeline")
    body, variables = next(iter(props.values()))["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    assert json.loads(body)["Steps"][0]["Arguments"]["VpcConfig"]["Subnets"] == ["${Subnet0}", "${Subnet1}", "${Subnet2}"]
    assert set(variables) == {"RoleArn", "Subnet0", "Subnet1", "Subnet2"}
    assert pipeline.metric_executions_failed().metric_name == "ExecutionFailed"
    assert definition_parameters(DEFINITION) == {"DatasetName": "toy"}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"pipeline_name": "bad name!"}, "pipeline_name"),
        ({"subnet_ids": []}, "subnet_ids"),
        ({"definition": DEFINITION.replace("${RoleArn}", "${Secret}")}, r"unknown placeholder\(s\) \['Secret'\]"),
        ({"definition": DEFINITION.replace("${RoleArn}", "${MlflowTrackingArn}")}, r"unknown placeholder\(s\) \['MlflowTrackingArn'\]"),
    ],
)
def test_bad_props_name_the_prop(stack, overrides, message):
    with pytest.raises(ValueError, match=message):
        _pipeline(stack, **overrides)


def test_registry_needs_groups_and_drops_its_own_account_from_readers():
    stack = Stack(make_app(), "R", env={"account": "111111111111", "region": "us-east-1"})
    key = kms.Key(stack, "K")
    dlq = sqs.Queue(stack, "Q")
    with pytest.raises(ValueError, match="groups"):
        ModelRegistry(stack, "Empty", name_prefix="p", groups={}, key=key, dead_letter_queue=dlq)
    registry = ModelRegistry(stack, "Reg", name_prefix="p", groups={"a": "p-a"}, key=key, dead_letter_queue=dlq,
                             reader_accounts=["111111111111", "222222222222"])
    assert registry.reader_accounts == ("222222222222",)
    assert registry.approved_parameter_name("a") == "/p/fine-tuning/a/approved-model-package-arn"


def _job_steps(steps: list) -> list[dict]:
    found = []
    for step in steps:
        if step["Type"] in ("Training", "Processing", "Transform", "Tuning"):
            found.append(step)
        for branch in ("IfSteps", "ElseSteps"):
            found += _job_steps(step.get("Arguments", {}).get(branch, []))
    return found


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_job_step_of_the_built_definitions_carries_the_cost_tags(env):
    from llmops.config import REPO_ROOT
    from llmops.constructs.fine_tuning.pipeline import tag_job_steps
    from tests.helpers import config_with

    tags = config_with().get(env).tags
    compiled = json.loads((REPO_ROOT / "pipelines" / "definitions" / f"{env}.json").read_text())["pipelines"]
    assert compiled
    for use_case, definition in compiled.items():
        steps = _job_steps(json.loads(tag_job_steps(definition, tags))["Steps"])
        assert {s["Type"] for s in steps} == {"Training", "Processing"}, use_case
        for step in steps:
            assert {t["Key"]: t["Value"] for t in step["Arguments"]["Tags"]} == tags, (use_case, step["Name"])
        # Nothing else changed: without its Tags every step is the compiled one.
        untagged = json.loads(tag_job_steps(definition, tags))
        for step in _job_steps(untagged["Steps"]):
            del step["Arguments"]["Tags"]
        assert untagged == json.loads(definition)


def test_tagging_reaches_nested_steps_keeps_existing_tags_and_escapes_placeholders():
    from llmops.constructs.fine_tuning.pipeline import tag_job_steps

    definition = json.dumps({"Steps": [
        {"Name": "Gate", "Type": "Condition", "Arguments": {"Conditions": [], "ElseSteps": [], "IfSteps": [
            {"Name": "Again", "Type": "Processing", "Arguments": {"Tags": [{"Key": "owner", "Value": "step"}]}}]}},
        {"Name": "Register", "Type": "RegisterModel", "Arguments": {}},
    ]})
    out = json.loads(tag_job_steps(definition, {"owner": "team", "cost-centre": "${x}"}))
    nested = out["Steps"][0]["Arguments"]["IfSteps"][0]["Arguments"]["Tags"]
    assert nested == [{"Key": "owner", "Value": "step"}, {"Key": "cost-centre", "Value": "${!x}"}]
    assert "Tags" not in out["Steps"][0]["Arguments"] and "Tags" not in out["Steps"][1]["Arguments"]


@pytest.mark.parametrize(("tags", "message"), [
    ({f"k{i}": "v" for i in range(51)}, "at most 50"),
    ({"aws:reserved": "v"}, "tags.aws:reserved"),
    ({"k": "v" * 257}, "tags.k"),
])
def test_tags_sagemaker_would_refuse_are_refused_at_synth(tags, message):
    from llmops.constructs.fine_tuning.pipeline import tag_job_steps

    with pytest.raises(ValueError, match=message):
        tag_job_steps('{"Steps": []}', tags)
