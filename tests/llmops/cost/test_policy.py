"""Caps on expensive choices, cost.max_idle_per_day, budgets and the dev network posture on templates."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from llmops.config import ConfigError
from llmops.cost.policy import check_cost_policy
from tests.helpers import config_with, synth_stage


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"instances": {"training": {"type": "ml.p4d.24xlarge"}}}, "instances.training: ml.p4d.24xlarge costs about $904.51"),
        ({"fine_tuning": {"instance_type": "ml.trn1.32xlarge"}}, "fine_tuning.instance_type: ml.trn1.32xlarge costs about"),
        ({"instances": {"inference": {"type": "ml.p5.48xlarge"}}}, "add 'p5' to environments.dev.cost.allow"),
        ({"instances": {"inference": {"count": 6}}}, "instances.inference: 6 x ml.g5.2xlarge (about $218.16 a day) exceeds"),
        ({"vector_store": {"backend": "kendra"}}, "vector_store.backend: a Kendra DEVELOPER_EDITION index costs about $27.00"),
    ],
)
def test_expensive_choices_are_refused_with_their_daily_cost(overrides, field):
    env = config_with("dev", overrides).get("dev")
    with pytest.raises(ConfigError) as err:
        check_cost_policy(env)
    assert field in str(err.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"instances": {"training": {"type": "ml.p4d.24xlarge"}}, "cost": {"allow": ["p4d"]}},
        {"fine_tuning": {"instance_type": "ml.trn1.32xlarge"}, "cost": {"allow": ["ml.trn1.32xlarge"]}},
        {"instances": {"inference": {"count": 6}}, "cost": {"allow": ["high-instance-count"]}},
        {"vector_store": {"backend": "kendra"}, "cost": {"allow": ["kendra"], "max_idle_per_day": None}},
    ],
)
def test_allow_lets_an_expensive_choice_through(overrides):
    check_cost_policy(config_with("dev", overrides).get("dev"))


def test_max_idle_per_day_names_the_three_largest_items():
    env = config_with("staging", {"cost": {"max_idle_per_day": 5}}).get("staging")
    with pytest.raises(ConfigError) as err:
        check_cost_policy(env)
    message = str(err.value)
    # 36.36 (LLM endpoint, 1 x ml.g5.2xlarge all day) + 8.64 (interface endpoints) + 5.76 (OCUs) + small items.
    assert "environments.staging.cost.max_idle_per_day: the idle estimate is $50.79" in message
    assert "LLM endpoint variant primary (ml.g5.2xlarge x 1) $36.36" in message
    assert "interface VPC endpoints $8.64" in message and "OpenSearch Serverless" in message


def test_dev_synthesizes_under_its_cap():
    check_cost_policy(config_with("dev").get("dev"))


def test_unknown_allowance_is_a_config_error():
    with pytest.raises(ConfigError, match=r"cost.allow: unknown allowance\(s\) \['p9'\]"):
        config_with("dev", {"cost": {"allow": ["p9"]}})


def test_a_budget_needs_a_recipient():
    with pytest.raises(ConfigError, match="staging.cost: budget_emails: a monthly_budget needs at least one"):
        config_with("staging", {"cost": {"monthly_budget": 10}})


def test_budget_with_alerts_at_80_and_100_percent():
    template = Template.from_stack(synth_stage("dev").foundation)
    template.has_resource_properties("AWS::Budgets::Budget", {
        "Budget": {
            "BudgetType": "COST", "TimeUnit": "MONTHLY", "BudgetLimit": {"Amount": 100, "Unit": "USD"},
            "CostFilters": {"TagKeyValue": ["user:environment$dev"]},
        },
        "NotificationsWithSubscribers": [
            {"Notification": Match.object_like({"Threshold": 80, "NotificationType": "ACTUAL"}),
             "Subscribers": [{"SubscriptionType": "EMAIL", "Address": "platform-team@example.com"}]},
            {"Notification": Match.object_like({"Threshold": 100}), "Subscribers": Match.any_value()},
        ],
    })
    assert not Template.from_stack(synth_stage("prod").foundation).find_resources("AWS::Budgets::Budget")


def _functions_in_vpc(stage):
    result = {}
    for stack in stage.stacks:
        for logical, res in Template.from_stack(stack).find_resources("AWS::Lambda::Function").items():
            handler = res["Properties"].get("Handler", logical)
            result[handler] = "VpcConfig" in res["Properties"]
    return result


def test_dev_profile_runs_only_database_functions_in_the_vpc_and_endpoints_in_one_az():
    dev = _functions_in_vpc(synth_stage("dev"))
    in_vpc = {h for h, v in dev.items() if v}
    assert in_vpc == {
        "lambdas.rag_query.handler.handler", "lambdas.rag_ingest.handler.handler",
        "lambdas.rag_pgvector_schema.handler.handler",
    }
    endpoints = Template.from_stack(synth_stage("dev").foundation).find_resources(
        "AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Interface"}})
    # The third-party list plus lambda: the schema provider framework runs in the VPC with its handler.
    assert len(endpoints) == 4
    assert all(len(e["Properties"]["SubnetIds"]) == 1 for e in endpoints.values())


def test_prod_keeps_the_isolated_posture():
    prod = _functions_in_vpc(synth_stage("prod"))
    platform = {h: v for h, v in prod.items() if h.startswith("lambdas.")}
    assert platform and all(platform.values()), [h for h, v in platform.items() if not v]
    endpoints = Template.from_stack(synth_stage("prod").foundation).find_resources(
        "AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Interface"}})
    assert len(endpoints) == 19  # the configured 18 and lambda, for the custom-resource provider frameworks
    assert all(len(e["Properties"]["SubnetIds"]) == 3 for e in endpoints.values())


def test_every_function_carries_the_cost_tags_for_the_jobs_it_starts():
    import json as _json

    from lambdas.runtime.cost_tags import cost_tags

    stage = synth_stage("dev")
    for stack in stage.stacks:
        for res in Template.from_stack(stack).find_resources("AWS::Lambda::Function").values():
            if not res["Properties"].get("Handler", "").startswith("lambdas."):
                continue
            tags = _json.loads(res["Properties"]["Environment"]["Variables"]["COST_TAGS"])
            assert tags == {"project": "llmops", "environment": "dev", "cost-centre": "ml-platform", "owner": "platform-team"}
            assert {t["Key"] for t in cost_tags({"COST_TAGS": _json.dumps(tags)})} == set(tags)
    assert cost_tags({"COST_TAGS": "{not json"}) == [] and cost_tags({}) == []
