"""Monitoring stack: a drift alarm per use case and metric, the retraining rule, scoped permissions, the metrics table."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from llmops.config import ConfigError
from tests.helpers import config_with, synth_stage


@pytest.fixture(scope="module")
def dev():
    return Template.from_stack(synth_stage("dev").monitoring)


def test_one_drift_alarm_per_use_case_and_metric_with_an_action(dev):
    alarms = dev.find_resources("AWS::CloudWatch::Alarm", {"Properties": {"Namespace": "LLMOps/Monitoring"}})
    names = sorted(a["Properties"]["AlarmName"] for a in alarms.values())
    assert names == [f"llmops-dev-drift-assistant-{m}" for m in sorted(["relevance", "hallucination", "toxicity", "refusal"])]
    for alarm in alarms.values():
        assert alarm["Properties"]["Threshold"] == 0.2 and alarm["Properties"]["AlarmActions"]
        assert {"Name": "Statistic", "Value": "PSI"} in alarm["Properties"]["Dimensions"]


def test_drift_alarms_reach_the_retraining_function_through_eventbridge(dev):
    (rule,) = dev.find_resources("AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"]["detail"] == {"alarmName": [{"prefix": "llmops-dev-drift-"}], "state": {"value": ["ALARM"]}}
    assert rule["Properties"]["Targets"][0]["DeadLetterConfig"]["Arn"]
    dev.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "lambdas.monitoring_retraining.handler.handler",
        "Environment": {"Variables": Match.object_like({"COOLDOWN_HOURS": "168", "REQUIRE_APPROVAL": "true",
                                                         "PIPELINES": json.dumps({"assistant": "llmops-dev-ft-assistant"})})},
    })


def test_the_function_may_start_only_its_use_cases_pipelines(dev):
    statements = [s for p in dev.find_resources("AWS::IAM::Policy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    start = [s for s in statements if s["Action"] == "sagemaker:StartPipelineExecution"]
    assert len(start) == 1 and "pipeline/llmops-dev-ft-assistant" in json.dumps(start[0]["Resource"])


def test_metrics_table_is_partitioned_by_date_for_athena(dev):
    dev.has_resource_properties("AWS::Glue::Table", {"TableInput": Match.object_like({
        "Name": "interaction_metrics", "PartitionKeys": [{"Name": "dt", "Type": "string"}]})})


def test_no_retraining_loop_when_switched_off():
    stage = synth_stage("dev", {"monitoring": {"retraining": {"enabled": False}}})
    template = Template.from_stack(stage.monitoring)
    template.resource_count_is("AWS::Events::Rule", 0)
    assert template.find_resources("AWS::CloudWatch::Alarm", {"Properties": {"Namespace": "LLMOps/Monitoring"}})


def test_unknown_drift_metric_is_named():
    with pytest.raises(ConfigError, match=r"monitoring.drift.metrics: unknown metric\(s\) \['vibes'\]"):
        config_with("dev", {"monitoring": {"drift": {"metrics": ["vibes"]}}})
