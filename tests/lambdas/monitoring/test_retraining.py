"""The retraining loop: throttle, approval and records, on moto DynamoDB, SageMaker Pipelines and SNS."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from moto import mock_aws

from lambdas.runtime.monitoring.retraining import RetrainingEventError, Settings, approve, decide, parse_alarm

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)


def _settings(**kw):
    base = dict(table="decisions", pipelines={"assistant": "llmops-dev-ft-assistant", "qa-bot": "llmops-dev-ft-qa-bot"},
                alarm_prefix="llmops-dev-drift-", cooldown=dt.timedelta(hours=24), require_approval=False,
                topic_arn=None, environment="dev")
    return Settings(**{**base, **kw})


def _event(name="llmops-dev-drift-assistant-relevance", state="ALARM", ts="2026-12-02T11:59:00.000+0000"):
    return {"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
            "detail": {"alarmName": name, "state": {"value": state, "reason": "PSI 0.31 > 0.2", "timestamp": ts}}}


@pytest.fixture
def aws(monkeypatch):
    for k, v in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        ddb, sm, sns = boto3.client("dynamodb"), boto3.client("sagemaker"), boto3.client("sns")
        ddb.create_table(TableName="decisions", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}])
        for name in ("llmops-dev-ft-assistant", "llmops-dev-ft-qa-bot"):
            sm.create_pipeline(PipelineName=name, PipelineDefinition='{"Version":"2020-12-01","Steps":[]}',
                               RoleArn="arn:aws:iam::123456789012:role/pipeline")
        yield ddb, sm, sns


def _decisions(ddb, use_case="assistant"):
    items = ddb.query(TableName="decisions", KeyConditionExpression="pk = :p AND begins_with(sk, :d)",
                      ExpressionAttributeValues={":p": {"S": f"use-case#{use_case}"}, ":d": {"S": "decision#"}})["Items"]
    return [i["status"]["S"] for i in items]


def test_a_drift_alarm_starts_one_run_and_the_next_within_the_cooldown_is_throttled(aws):
    ddb, sm, _ = aws
    settings = _settings()
    first = decide(parse_alarm(_event(), settings), settings, dynamodb=ddb, sagemaker=sm, now=NOW)
    assert first["status"] == "started" and "execution" in first
    second = decide(parse_alarm(_event(ts="2026-12-02T13:00:00.000+0000"), settings), settings, dynamodb=ddb, sagemaker=sm,
                    now=NOW + dt.timedelta(hours=2))
    assert second["status"] == "throttled"
    later = decide(parse_alarm(_event(ts="2026-12-03T13:00:00.000+0000"), settings), settings, dynamodb=ddb, sagemaker=sm,
                   now=NOW + dt.timedelta(hours=25))
    assert later["status"] == "started"
    executions = sm.list_pipeline_executions(PipelineName="llmops-dev-ft-assistant")["PipelineExecutionSummaries"]
    assert len(executions) == 2
    assert sorted(_decisions(ddb)) == ["started", "started", "throttled"]


def test_use_cases_are_throttled_independently(aws):
    ddb, sm, _ = aws
    settings = _settings()
    decide(parse_alarm(_event(), settings), settings, dynamodb=ddb, sagemaker=sm, now=NOW)
    other = decide(parse_alarm(_event(name="llmops-dev-drift-qa-bot-toxicity"), settings), settings, dynamodb=ddb,
                   sagemaker=sm, now=NOW)
    assert other["status"] == "started" and other["use_case"] == "qa-bot"


def test_with_approval_required_the_run_waits_and_a_person_starts_it(aws):
    ddb, sm, sns = aws
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    settings = _settings(require_approval=True, topic_arn=topic)
    pending = decide(parse_alarm(_event(), settings), settings, dynamodb=ddb, sagemaker=sm, sns=sns, now=NOW)
    assert pending["status"] == "pending-approval"
    assert sm.list_pipeline_executions(PipelineName="llmops-dev-ft-assistant")["PipelineExecutionSummaries"] == []
    message = json.loads(sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"])["Message"]
    assert f"--decision {pending['decision']}" in message and "PSI 0.31 > 0.2" in message
    started = approve("assistant", pending["decision"], settings, dynamodb=ddb, sagemaker=sm, reason="approved", approved_by="alice")
    assert started["status"] == "started"
    assert sorted(_decisions(ddb)) == ["pending-approval", "started"]


def test_ok_transitions_are_ignored_and_foreign_alarms_refused():
    settings = _settings()
    assert parse_alarm(_event(state="OK"), settings) is None
    with pytest.raises(RetrainingEventError, match="is not a drift alarm"):
        parse_alarm(_event(name="llmops-dev-api-5xx"), settings)
    with pytest.raises(RetrainingEventError, match="names no use case"):
        parse_alarm(_event(name="llmops-dev-drift-other-relevance"), settings)
    with pytest.raises(RetrainingEventError, match="detail-type"):
        parse_alarm({"detail-type": "Object Created"}, settings)


def test_the_handler_reads_its_settings_from_the_environment(aws, monkeypatch):
    import importlib

    from tests.lambdas.context import LambdaContext

    monkeypatch.setenv("DECISIONS_TABLE", "decisions")
    monkeypatch.setenv("PIPELINES", json.dumps({"assistant": "llmops-dev-ft-assistant"}))
    monkeypatch.setenv("ALARM_PREFIX", "llmops-dev-drift-")
    monkeypatch.setenv("COOLDOWN_HOURS", "24")
    monkeypatch.setenv("REQUIRE_APPROVAL", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LLMOps")
    module = importlib.import_module("lambdas.monitoring_retraining.handler")
    module.clients.cache_clear()
    assert module.handler(_event(), LambdaContext())["status"] == "started"
    assert module.handler(_event(state="OK"), LambdaContext()) == {"status": "ignored"}
