"""The ``alerts`` config section and where alarms go (the foundation alarm topic)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops.config import ConfigError
from tests.helpers import config_with, synth_stage, template_of

TOPIC = "arn:aws:sns:us-east-1:123456789012:ops-alerts"


def test_no_alerts_by_default_and_values_are_kept() -> None:
    assert config_with("dev").get("dev").alerts.emails == ()
    env = config_with("dev", {"alerts": {"emails": ["ops@example.com", "ops@example.com"], "topic_arn": TOPIC}}).get("dev")
    assert env.alerts.emails == ("ops@example.com",) and env.alerts.topic_arn == TOPIC


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"emails": ["ops-at-example.com"]}, r"environments\.dev\.alerts\.emails: not e-mail address\(es\): \['ops-at-example\.com'\]"),
        ({"emails": "ops@example.com"}, r"environments\.dev\.alerts\.emails"),
        ({"topic_arn": "arn:aws:sqs:us-east-1:123456789012:q"}, r"alerts\.topic_arn: must be an SNS topic ARN"),
        ({"topic_arn": TOPIC + ".fifo"}, r"alerts\.topic_arn: CloudWatch alarms notify standard SNS topics only"),
        ({"topic_arn": "arn:aws:sns:eu-west-1:123456789012:ops"}, r"alerts\.topic_arn: alarms notify topics of their own region us-east-1"),
        ({"pager": "x"}, r"alerts\.pager: unknown field"),
    ],
)
def test_bad_alerts_name_the_field(alerts: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_with("dev", {"alerts": alerts})


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40).filter(lambda s: "@" not in s))
def test_anything_without_an_at_sign_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"alerts\.emails"):
        config_with("dev", {"alerts": {"emails": [text]}})


def test_emails_subscribe_with_a_dead_letter_queue_and_the_existing_topic_is_a_second_action() -> None:
    stage = synth_stage("dev", {"alerts": {"emails": ["ops@example.com", "ml@example.com"], "topic_arn": TOPIC}})
    foundation = template_of(stage.foundation)
    subs = foundation.find_resources("AWS::SNS::Subscription")
    assert sorted(s["Properties"]["Endpoint"] for s in subs.values()) == ["ml@example.com", "ops@example.com"]
    assert all(s["Properties"]["Protocol"] == "email" and "deadLetterTargetArn" in s["Properties"]["RedrivePolicy"] for s in subs.values())
    for stack in stage.stacks:
        for alarm in template_of(stack).find_resources("AWS::CloudWatch::Alarm").values():
            actions = alarm["Properties"]["AlarmActions"]
            assert TOPIC in actions and len(actions) == 2, f"{stack.node.id}: {actions}"


def test_alarm_topic_is_encrypted_and_lets_only_this_accounts_alarms_publish() -> None:
    foundation = template_of(synth_stage("dev").foundation)
    (topic,) = foundation.find_resources("AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    (policy,) = foundation.find_resources("AWS::SNS::TopicPolicy").values()
    allow = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allow) == 1 and allow[0]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(allow[0]["Condition"]) == {"StringEquals", "ArnLike"}
