"""Starting and stopping a scheduled endpoint now, from its deployed schedules (moto SageMaker and Scheduler)."""

from __future__ import annotations

import argparse
import json

import boto3
import pytest
import yaml
from moto import mock_aws

from lambdas.runtime.inference.endpoint_schedule import ScheduleError, start_endpoint, stop_endpoint

REGION = "eu-west-1"
ENDPOINT = "llmops-dev-llm"
CONFIG = "llmops-dev-llm-2dfd2afc"
ROLE = "arn:aws:iam::123456789012:role/scheduler"


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sagemaker, scheduler = boto3.client("sagemaker", region_name=REGION), boto3.client("scheduler", region_name=REGION)
        sagemaker.create_model(ModelName="m", ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
                               PrimaryContainer={"Image": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/djl-inference:x"})
        sagemaker.create_endpoint_config(EndpointConfigName=CONFIG, ProductionVariants=[
            {"VariantName": "primary", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.g4dn.xlarge"}])
        # The two schedules as EndpointSchedule synthesizes them (their Input is what start replays).
        for what, api, payload in (
            ("stop", "deleteEndpoint", {"EndpointName": ENDPOINT}),
            ("start", "createEndpoint", {"EndpointName": ENDPOINT, "EndpointConfigName": CONFIG,
                                         "Tags": [{"Key": "environment", "Value": "dev"}]}),
        ):
            scheduler.create_schedule(Name=f"{ENDPOINT}-{what}", ScheduleExpression="cron(0 7 ? * MON-FRI *)",
                                      FlexibleTimeWindow={"Mode": "OFF"},
                                      Target={"Arn": f"arn:aws:scheduler:::aws-sdk:sagemaker:{api}", "RoleArn": ROLE,
                                              "Input": json.dumps(payload)})
        yield sagemaker, scheduler


def test_start_replays_the_start_schedule_and_stop_the_stop_schedule(aws):
    sagemaker, scheduler = aws
    assert start_endpoint(sagemaker, scheduler, ENDPOINT, wait=True) == f"{ENDPOINT}: creating from {CONFIG}; InService"
    described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert described["EndpointConfigName"] == CONFIG
    assert sagemaker.list_tags(ResourceArn=described["EndpointArn"])["Tags"] == [{"Key": "environment", "Value": "dev"}]
    assert start_endpoint(sagemaker, scheduler, ENDPOINT) == f"{ENDPOINT}: already InService"  # idempotent
    assert stop_endpoint(sagemaker, scheduler, ENDPOINT).startswith(f"{ENDPOINT}: deleting")
    assert stop_endpoint(sagemaker, scheduler, ENDPOINT) == f"{ENDPOINT}: already stopped"


def test_an_endpoint_without_a_schedule_is_refused_naming_it(aws):
    sagemaker, scheduler = aws
    with pytest.raises(ScheduleError, match="llmops-dev-embeddings has no start schedule"):
        start_endpoint(sagemaker, scheduler, "llmops-dev-embeddings")
    with pytest.raises(ScheduleError, match="no stop schedule"):
        stop_endpoint(sagemaker, scheduler, "llmops-dev-embeddings")


def test_the_cli_starts_every_scheduled_endpoint_of_the_environment(aws, tmp_path, capsys):
    from llmops.cli.inference import run
    from tests.helpers import raw_config

    raw = raw_config()
    dev = raw["environments"]["dev"]
    dev.setdefault("inference", {}).setdefault("llm", {})["scaling"] = {"mode": "target-tracking", "min_capacity": 1, "max_capacity": 1}
    dev["inference"]["llm"]["schedule"] = {"enabled": True}
    dev.setdefault("cost", {})["max_idle_per_day"] = 50
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    args = argparse.Namespace(env="dev", config=str(path), region=REGION, command="start", wait=False)
    assert run(args, session=boto3.Session(region_name=REGION)) == 0
    assert capsys.readouterr().out.strip() == f"{ENDPOINT}: creating from {CONFIG}"
    unscheduled = argparse.Namespace(env="prod", config=str(path), region=REGION, command="stop")
    assert run(unscheduled, session=boto3.Session(region_name=REGION)) == 2
    assert "environments.prod.inference: no endpoint has schedule.enabled" in capsys.readouterr().err
