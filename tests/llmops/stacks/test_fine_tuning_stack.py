"""FineTuningStack: pipelines from the compiled definitions, registry, approval path, triggers, IAM."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from llmops.config import ConfigError
from tests.helpers import config_with, make_app, synth_stage, template_of

ONLY_FINE_TUNING = {"capabilities": {"rag": False, "prompt_catalog": False, "data_prep": False, "human_review": False}}


@pytest.fixture(scope="module")
def dev():
    return template_of(synth_stage("dev", ONLY_FINE_TUNING).fine_tuning)


@pytest.fixture(scope="module")
def staging():
    return template_of(synth_stage("staging", ONLY_FINE_TUNING).fine_tuning)


def _one(template, type_: str) -> dict[str, Any]:
    found = template.find_resources(type_)
    assert len(found) == 1, found.keys()
    return next(iter(found.values()))["Properties"]


def _policy_statements(template) -> list[dict[str, Any]]:
    statements = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_pipeline_definition_is_the_compiled_one_with_deploy_time_values_substituted(dev):
    props = _one(dev, "AWS::SageMaker::Pipeline")
    assert props["PipelineName"] == "llmops-dev-ft-assistant"
    body, variables = props["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    definition = json.loads(body)
    assert [s["Name"] for s in definition["Steps"]] == ["Prepare", "Train", "Evaluate", "CheckThresholds"]
    # dev has two isolated subnets: the one subnet placeholder became two.
    train = definition["Steps"][1]["Arguments"]
    assert train["VpcConfig"]["Subnets"] == ["${Subnet0}", "${Subnet1}"]
    assert set(variables) == {"RoleArn", "ArtifactsBucket", "DataBucket", "KmsKeyArn", "CodeBucket", "CodeKey", "CodeFile", "SecurityGroupId", "Subnet0", "Subnet1"}
    execution_role = next(k for k in dev.find_resources("AWS::IAM::Role") if k.startswith("ExecutionRole"))
    assert variables["RoleArn"] == {"Fn::GetAtt": [execution_role, "Arn"]}
    assert variables["CodeFile"] == variables["CodeKey"] and variables["CodeKey"].endswith(".gz")
    assert props["RoleArn"] == variables["RoleArn"]


def test_model_package_group_lets_staging_and_prod_accounts_read(dev, staging):
    group = _one(dev, "AWS::SageMaker::ModelPackageGroup")
    assert group["ModelPackageGroupName"] == "llmops-dev-assistant"
    principals = [s["Principal"]["AWS"] for s in group["ModelPackageGroupPolicy"]["Statement"]]
    assert all(p == [{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::111111111111:root"]]},
                     {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::222222222222:root"]]}] for p in principals)
    actions = sorted(a for s in group["ModelPackageGroupPolicy"]["Statement"] for a in s["Action"])
    # Deploying from a reader account: create a model from the package (artifacts via bucket and key policies).
    assert actions == ["sagemaker:CreateModel", "sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup",
                       "sagemaker:ListModelPackages"]
    assert "ModelPackageGroupPolicy" not in _one(staging, "AWS::SageMaker::ModelPackageGroup")


def test_approval_rule_records_the_package_arn_in_a_deterministic_parameter(dev):
    # CloudFormation never owns the parameter (a stack update would reset the recorded ARN):
    # the function creates and overwrites it, with exactly these two actions on exactly its ARN.
    assert not dev.find_resources("AWS::SSM::Parameter")
    statements = [s for p in dev.find_resources("AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "RecordApprovedPackages"]
    assert len(statements) == 1 and statements[0]["Action"] == ["ssm:GetParameter", "ssm:PutParameter"]
    assert json.dumps(statements[0]["Resource"]).endswith(':parameter/llmops-dev/fine-tuning/assistant/approved-model-package-arn"]]}')
    dev.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Model Package State Change"],
            "detail": {"ModelPackageGroupName": ["llmops-dev-assistant"], "ModelApprovalStatus": ["Approved"]},
        },
        "Targets": [Match.object_like({"DeadLetterConfig": Match.any_value(), "RetryPolicy": Match.any_value()})],
    })
    dev.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "lambdas.fine_tuning_record_approval.handler.handler",
        "Environment": {"Variables": Match.object_like({
            "APPROVAL_PARAMETERS": json.dumps({"llmops-dev-assistant": "/llmops-dev/fine-tuning/assistant/approved-model-package-arn"}),
        })},
    })


def test_new_dataset_version_starts_the_pipeline(dev):
    rules = [r["Properties"] for r in dev.find_resources("AWS::Events::Rule").values() if "aws.s3" in json.dumps(r)]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["EventPattern"]["detail"]["object"]["key"] == [{"wildcard": "datasets/assistant/v*/manifest.json"}]
    target = rule["Targets"][0]
    params = {p["Name"]: p["Value"] for p in target["SageMakerPipelineParameters"]["PipelineParameterList"]}
    assert params == {"DatasetName": "assistant", "DatasetManifestKey": "$.detail.object.key"}
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 8


def test_execution_role_is_least_privilege(dev):
    role = next(r["Properties"] for k, r in dev.find_resources("AWS::IAM::Role").items() if k.startswith("ExecutionRole"))
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert "ManagedPolicyArns" not in role
    for statement in _policy_statements(dev):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any(a == "*" or a.endswith(":*") for a in actions), statement
    text = json.dumps(_policy_statements(dev))
    assert "sagemaker:CreateTrainingJob" in text and "training-job/pipelines-*" in text
    assert "sagemaker:StartPipelineExecution" in text
    # Step code: exactly the asset object, not the whole bootstrap bucket.
    code = [s for s in _policy_statements(dev) if s.get("Sid") == "ReadStepCode"][0]
    assert code["Action"] == "s3:GetObject" and ".gz" in json.dumps(code["Resource"])


def test_job_security_group_admits_only_itself(dev):
    dev.has_resource_properties("AWS::EC2::SecurityGroupIngress", {"IpProtocol": "-1", "SourceSecurityGroupId": Match.any_value()})


def test_dead_letter_queue_is_cmk_encrypted_and_failures_alarm(dev):
    queue = _one(dev, "AWS::SQS::Queue")
    assert "KmsMasterKeyId" in queue
    dev.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Namespace": "AWS/Sagemaker/ModelBuildingPipeline", "MetricName": "ExecutionFailed",
        "Dimensions": [{"Name": "PipelineName", "Value": "llmops-dev-ft-assistant"}],
    })


def test_a_stale_compiled_definition_fails_synth_naming_the_field():
    from llmops.stage import LlmOpsStage

    config = config_with("dev", {**ONLY_FINE_TUNING, "fine_tuning": {"epochs": 9}})
    with pytest.raises(ConfigError, match=r"environments.dev.fine_tuning: dev.json was compiled from a different configuration"):
        LlmOpsStage(make_app(), config.get("dev"), nag=False)


def test_a_second_use_case_with_freshly_built_definitions(tmp_path, monkeypatch):
    pytest.importorskip("sagemaker.core.workflow.parameters")
    from llmops.constructs.fine_tuning import pipeline as fine_tuning_pipeline
    from llmops.stage import LlmOpsStage
    from pipelines.build import build_definitions, render

    overrides = {**ONLY_FINE_TUNING, "cost": {"max_idle_per_day": None}, "fine_tuning": {
        "use_cases": {"assistant": {"dataset": "assistant"}, "triage": {"dataset": "tickets", "base_model": "Qwen/Qwen2.5-0.5B"}},
    }}
    env = config_with("dev", overrides).get("dev")
    (tmp_path / "dev.json").write_text(render(build_definitions(env)))
    monkeypatch.setattr(fine_tuning_pipeline, "DEFINITIONS_DIR", tmp_path)
    template = template_of(LlmOpsStage(make_app(), env, nag=False).fine_tuning)
    assert len(template.find_resources("AWS::SageMaker::Pipeline")) == 2
    assert len(template.find_resources("AWS::SageMaker::ModelPackageGroup")) == 2
    assert not template.find_resources("AWS::SageMaker::MlflowTrackingServer")
    pipelines = [p["Properties"] for p in template.find_resources("AWS::SageMaker::Pipeline").values()]
    triage = next(p for p in pipelines if p["PipelineName"] == "llmops-dev-ft-triage")
    body, variables = triage["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    assert "MlflowTrackingArn" not in variables and "base-models/Qwen/Qwen2.5-0.5B/" in body


def test_every_job_the_pipeline_starts_carries_the_cost_tags(dev):
    from tests.helpers import config_with

    tags = config_with().get("dev").tags
    body, _ = _one(dev, "AWS::SageMaker::Pipeline")["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    jobs = [s for s in json.loads(body)["Steps"] if s["Type"] in ("Training", "Processing")]
    assert [s["Name"] for s in jobs] == ["Prepare", "Train", "Evaluate"]
    for step in jobs:
        assert {t["Key"]: t["Value"] for t in step["Arguments"]["Tags"]} == tags, step["Name"]
    # Tag-on-create needs sagemaker:AddTags on the jobs, scoped to the ARNs the pipeline gives them.
    (jobs_statement,) = [s for s in _policy_statements(dev) if s.get("Sid") == "PipelineJobs"]
    assert "sagemaker:AddTags" in jobs_statement["Action"]
    assert all("-job/pipelines-*" in json.dumps(r) for r in jobs_statement["Resource"])
