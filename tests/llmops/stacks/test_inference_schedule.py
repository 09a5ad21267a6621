"""Scheduled stop/start of instance-based endpoints: config checks, Scheduler targets, least-privilege role, cost."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from llmops.config import ConfigError, EndpointScheduleConfig
from llmops.cron import Cron, CronError, on_hours_per_day
from tests.helpers import config_with, synth_stage, template_of

ONLY = {"capabilities": {"data_prep": False, "prompt_catalog": False, "fine_tuning": False, "human_review": False, "rag": False}}
WEEKDAYS = {"enabled": True, "start": "cron(0 7 ? * MON-FRI *)", "stop": "cron(0 19 ? * MON-FRI *)", "timezone": "Europe/Berlin"}
# A test config: an instance-based LLM (target tracking) and instance-based embeddings, both on a schedule.
SCHEDULED = {**ONLY, "cost": {"max_idle_per_day": 50}, "inference": {
    "llm": {"scaling": {"mode": "target-tracking", "min_capacity": 1, "max_capacity": 1}, "schedule": WEEKDAYS},
    "embeddings": {"serverless": False, "schedule": {**WEEKDAYS, "stop": "cron(30 18 ? * MON-FRI *)"}},
}}


@pytest.fixture(scope="module")
def stack():
    return synth_stage("dev", SCHEDULED).inference


@pytest.fixture(scope="module")
def template(stack):
    return template_of(stack)


def test_each_scheduled_endpoint_gets_a_stop_and_a_start_calling_sagemaker_directly(stack, template):
    schedules = {r["Properties"]["Name"]: r["Properties"] for r in template.find_resources("AWS::Scheduler::Schedule").values()}
    assert set(schedules) == {"llmops-dev-llm-stop", "llmops-dev-llm-start", "llmops-dev-embeddings-stop", "llmops-dev-embeddings-start"}
    for endpoint in (stack.llm, stack.embeddings):
        stop, start = schedules[f"{endpoint.endpoint_name}-stop"], schedules[f"{endpoint.endpoint_name}-start"]
        assert stop["Target"]["Arn"] == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":scheduler:::aws-sdk:sagemaker:deleteEndpoint"]]}
        assert start["Target"]["Arn"]["Fn::Join"][1][-1].endswith(":sagemaker:createEndpoint")
        assert json.loads(stop["Target"]["Input"]) == {"EndpointName": endpoint.endpoint_name}
        created = json.loads(start["Target"]["Input"])
        # The config the stack holds now, and the cost tags CloudFormation would have put on the endpoint.
        assert created["EndpointConfigName"] == endpoint.endpoint_config_name
        assert {t["Key"]: t["Value"] for t in created["Tags"]} == stack.env_config.tags
        assert stop["ScheduleExpressionTimezone"] == start["ScheduleExpressionTimezone"] == "Europe/Berlin"
        assert start["ScheduleExpression"] == "cron(0 7 ? * MON-FRI *)"
        assert stop["FlexibleTimeWindow"] == {"Mode": "OFF"} and stop["State"] == "ENABLED"
    assert schedules["llmops-dev-embeddings-stop"]["ScheduleExpression"] == "cron(30 18 ? * MON-FRI *)"


def test_the_scheduler_role_may_touch_only_its_endpoint_and_config(stack, template):
    account = {"Ref": "AWS::AccountId"}
    for endpoint in (stack.llm, stack.embeddings):
        role_id = stack.get_logical_id(endpoint.schedule.role.node.default_child)
        role = template.find_resources("AWS::IAM::Role")[role_id]["Properties"]
        (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
        assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": account}
        statements = [s for p in template.find_resources("AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
                      for s in p["Properties"]["PolicyDocument"]["Statement"]]
        by_sid = {s["Sid"]: s for s in statements}
        assert set(by_sid) == {"StopEndpoint", "StartEndpoint", "TagOnStart", "VolumeKeyGrant", "DeadLetters", "DeadLettersKey"}
        dlq = stack.resolve(endpoint.schedule.dead_letter_queue.queue_arn)
        assert by_sid["DeadLetters"]["Resource"] == dlq
        for cfn in endpoint.schedule.schedules.values():
            assert stack.resolve(cfn.target.dead_letter_config.arn) == dlq
        alarm = template.find_resources("AWS::CloudWatch::Alarm")[stack.get_logical_id(endpoint.schedule.dead_letter_queue.alarm.node.default_child)]
        assert alarm["Properties"]["AlarmActions"], "the dead-letter alarm notifies the alarm topic"

        def arn(kind: str, name: str) -> dict:
            return stack.resolve(stack.format_arn(service="sagemaker", resource=kind, resource_name=name))

        assert by_sid["StopEndpoint"]["Resource"] == arn("endpoint", endpoint.endpoint_name)
        assert sorted(map(json.dumps, by_sid["StartEndpoint"]["Resource"])) == sorted(
            map(json.dumps, [arn("endpoint", endpoint.endpoint_name), arn("endpoint-config", endpoint.endpoint_config_name)]))
        assert by_sid["TagOnStart"]["Resource"] == arn("endpoint", endpoint.endpoint_name)
        assert by_sid["VolumeKeyGrant"]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
        assert not any("*" in json.dumps(s["Resource"]) or "*" in json.dumps(s["Action"]) for s in statements)


def test_no_committed_environment_schedules_an_endpoint():
    config = config_with()
    for name in config.environments:
        inf = config.get(name).inference
        assert not inf.llm.schedule.enabled and not inf.embeddings.schedule.enabled, name
    template = template_of(synth_stage("dev", ONLY).inference)
    assert template.find_resources("AWS::Scheduler::Schedule") == {}


def test_the_scheduled_stack_passes_cdk_nag():
    synth_stage("dev", SCHEDULED, nag=True)  # a finding fails the synth


@pytest.mark.parametrize(("overrides", "field"), [
    ({"llm": {"schedule": WEEKDAYS}}, "inference.llm.schedule.enabled"),  # dev's LLM scales to zero
    ({"llm": {"scaling": {"mode": "target-tracking", "min_capacity": 1}, "async_inference": {"enabled": True}, "schedule": WEEKDAYS}},
     "inference.llm.schedule.enabled"),
    ({"embeddings": {"schedule": WEEKDAYS}}, "inference.embeddings.schedule.enabled"),  # serverless
])
def test_a_schedule_on_an_endpoint_that_idles_at_zero_is_refused_naming_the_field(overrides, field):
    with pytest.raises((ConfigError, ValueError)) as info:
        config_with("dev", {"inference": overrides}).get("dev")
    assert field in str(info.value) and "zero" in str(info.value)


@pytest.mark.parametrize(("schedule", "field", "message"), [
    ({"start": "0 7 * * *"}, "start", "6 fields"),
    ({"stop": "cron(0 25 ? * MON-FRI *)"}, "stop", "outside 0-23"),
    ({"stop": "cron(0 19 * * MON-FRI *)"}, "stop", "exactly one of day-of-month and day-of-week"),
    ({"start": "cron(0 7 ? * 2#1 *)"}, "start", "not supported"),
    ({"timezone": "Mars/Olympus"}, "timezone", "IANA"),
])
def test_bad_cron_or_timezone_is_refused_naming_the_field(schedule, field, message):
    with pytest.raises((ConfigError, ValidationError, ValueError)) as info:
        config_with("prod", {"inference": {"llm": {"schedule": {**WEEKDAYS, **schedule}}}}).get("prod")
    text = str(info.value)
    assert f"schedule.{field}" in text and message in text, text


def test_on_hours_follow_the_crons():
    assert on_hours_per_day(Cron("0 7 ? * MON-FRI *"), Cron("0 19 ? * MON-FRI *")) == pytest.approx(12 * 5 / 7)
    assert on_hours_per_day(Cron("30 8 * * ? *"), Cron("0 17 * * ? *")) == pytest.approx(8.5)
    # Stopped Friday evening, started Monday morning: on all week except the weekend.
    assert on_hours_per_day(Cron("0 6 ? * MON *"), Cron("0 18 ? * FRI *")) == pytest.approx((4 * 24 + 12) / 7)
    with pytest.raises(CronError, match="neither"):
        on_hours_per_day(Cron("0 0 29 2 ? 2031"), Cron("0 1 29 2 ? 2031"))
    assert EndpointScheduleConfig(**WEEKDAYS).on_hours_per_day() == pytest.approx(12 * 5 / 7)


def test_llmops_cost_counts_only_the_on_hours():
    from llmops.cost.estimate import estimate

    base = config_with("prod").get("prod")
    scheduled = config_with("prod", {"inference": {"llm": {"schedule": WEEKDAYS}}}).get("prod")

    def llm_lines(env):
        return [line for line in estimate(env).lines if line.item.startswith("LLM endpoint variant")]

    (always,), (part,) = llm_lines(base), llm_lines(scheduled)
    assert part.quantity == pytest.approx(always.quantity * (12 * 5 / 7) / 24)
    assert "inference.llm.schedule on-hours" in part.quantity_from
