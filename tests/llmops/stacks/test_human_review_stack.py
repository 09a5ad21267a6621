"""Human review stack: the flow custom resource, least-privilege A2I role, routing queue and results rule."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from llmops.config import ConfigError
from lambdas.runtime.human_review.template import template_source
from tests.helpers import config_with, synth_stage


@pytest.fixture(scope="module")
def dev():
    return Template.from_stack(synth_stage("dev").human_review)


def test_flow_resource_carries_the_template_and_task_settings(dev):
    (flow,) = dev.find_resources("Custom::HumanReviewFlow").values()
    props = flow["Properties"]
    assert props["Template"] == template_source()
    assert props["Prefix"] == "llmops-dev-review" and props["TaskCount"] == "1"
    assert props["TaskTimeLimitSeconds"] == "3600" and props["TaskAvailabilitySeconds"] == "86400"
    assert json.dumps(props["OutputPath"]).count("reviews/output/") == 1
    assert "Fn::ImportValue" in json.dumps(props["WorkteamArn"])  # the data-prep workteam


def test_a2i_role_writes_only_the_review_output(dev):
    roles = dev.find_resources("AWS::IAM::Role", {"Properties": {"AssumeRolePolicyDocument": {"Statement": [
        Match.object_like({"Principal": {"Service": "sagemaker.amazonaws.com"}})]}}})
    assert len(roles) == 1
    (role_id,) = roles
    policies = [p for p in dev.find_resources("AWS::IAM::Policy").values()
                if {"Ref": role_id} in p["Properties"]["Roles"]]
    resources = json.dumps([s["Resource"] for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]])
    assert "reviews/output/*" in resources
    for statement in (s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any(a.endswith(":*") or a == "*" for a in actions)


def test_flow_function_manages_only_review_named_a2i_resources_and_passes_only_the_a2i_role(dev):
    statements = [s for p in dev.find_resources("AWS::IAM::Policy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    flow = [s for s in statements if "sagemaker:CreateFlowDefinition" in json.dumps(s["Action"])]
    assert len(flow) == 1 and "flow-definition/llmops-dev-review-*" in json.dumps(flow[0]["Resource"])
    passes = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert len(passes) == 1 and passes[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    start = [s for s in statements if s["Action"] == "sagemaker:StartHumanLoop"]
    assert len(start) == 1 and "FlowDefinitionArn" in json.dumps(start[0]["Resource"])


def test_routing_queue_feeds_the_start_function_with_partial_batch_failures(dev):
    dev.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "FunctionResponseTypes": ["ReportBatchItemFailures"], "BatchSize": 10})
    dev.has_resource_properties("AWS::SQS::Queue", {"RedrivePolicy": {"maxReceiveCount": 5, "deadLetterTargetArn": Match.any_value()},
                                                    "KmsMasterKeyId": Match.any_value()})


def test_results_rule_matches_review_outputs_with_a_dead_letter_queue(dev):
    (rule,) = dev.find_resources("AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "reviews/output/"}]
    assert rule["Properties"]["Targets"][0]["DeadLetterConfig"]["Arn"]


def test_every_environment_has_the_review_flow_and_it_can_be_switched_off():
    for name in ("dev", "staging", "prod"):
        assert synth_stage(name).human_review is not None
    off = synth_stage("dev", {"capabilities": {"human_review": False}})
    assert getattr(off, "human_review", None) is None


def test_review_without_a_workteam_is_refused():
    with pytest.raises(ConfigError, match="capabilities.human_review: needs a workteam"):
        config_with("dev", {"data_prep": {"workteam": {"enabled": False}}})


@pytest.mark.parametrize("overrides, message", [
    ({"workers_per_task": 4}, "human_review.workers_per_task"),
    ({"workteam_arn": "arn:aws:sagemaker:us-east-1:123:workteam/x"}, "human_review.workteam_arn: must be a private workteam ARN"),
    ({"routing": {"sample_rate": 2}}, "human_review.routing.sample_rate"),
    ({"dataset": "Bad_Name"}, "human_review.dataset"),
])
def test_bad_review_config_names_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message):
        config_with("dev", {"human_review": overrides})
