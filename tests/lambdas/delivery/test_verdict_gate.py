"""The experiment-verdict gate on moto S3, with verdicts written by the real judge."""

from __future__ import annotations

import datetime as dt
import json
import random

import boto3
import pytest
from moto import mock_aws

from lambdas.runtime.delivery.verdict_gate import check_verdict, verdict_key
from lambdas.runtime.experiments.judge import judge, verdict_json

BUCKET = "llmops-stg-data-111111111111-us-east-1"
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def s3(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def records(mean: float, n: int = 300, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    return [{"metrics": {"relevance": rng.gauss(mean, 0.1), "latency_ms": rng.gauss(800, 50)}} for _ in range(n)]


def put_verdict(s3, name: str, control_mean: float, treatment_mean: float, **extra) -> dict:
    verdict = judge(name, {"control": records(control_mean, seed=1), "candidate": records(treatment_mean, seed=2)},
                    ["relevance", "latency_ms"], min_samples=100, resamples=500)
    data = {**json.loads(verdict_json(verdict)), **extra}
    s3.put_object(Bucket=BUCKET, Key=verdict_key(name), Body=json.dumps(data).encode())
    return data


def gate(s3, name="answer-style", now=None, control="control", hours=48):
    return check_verdict(s3, bucket=BUCKET, experiment=name, control=control, metrics=["relevance", "latency_ms"],
                         max_age=dt.timedelta(hours=hours), now=now or NOW)


def test_a_worse_candidate_stops_the_gate_naming_metric_and_interval(s3):
    put_verdict(s3, "answer-style", 0.60, 0.50, judged_at="2026-12-02T10:00:00+00:00")
    result = gate(s3)
    assert not result.passed
    (reason,) = result.reasons
    assert reason.startswith("candidate is worse than control on relevance") and "95% CI" in reason
    assert "stopped" in result.line()


def test_an_equal_or_better_candidate_passes(s3):
    put_verdict(s3, "answer-style", 0.50, 0.60, judged_at="2026-12-02T10:00:00+00:00")
    result = gate(s3)
    assert result.passed and "verdict winner (candidate)" in result.reasons[0]


def test_a_missing_verdict_stops_the_gate(s3):
    result = gate(s3, name="never-judged")
    assert not result.passed and "no verdict at s3://" in result.reasons[0] and "NoSuchKey" in result.reasons[0]


def test_a_stale_verdict_stops_the_gate(s3):
    put_verdict(s3, "answer-style", 0.50, 0.60, judged_at="2026-11-28T10:00:00+00:00")
    result = gate(s3)
    assert not result.passed and "stale" in result.reasons[0] and "limit 48 h" in result.reasons[0]


def test_without_judged_at_the_object_age_counts(s3):
    put_verdict(s3, "answer-style", 0.50, 0.60)
    assert gate(s3, now=dt.datetime.now(dt.timezone.utc)).passed
    assert not gate(s3, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)).passed


def test_a_verdict_against_another_control_arm_stops_the_gate(s3):
    put_verdict(s3, "answer-style", 0.50, 0.60, judged_at="2026-12-02T10:00:00+00:00")
    result = gate(s3, control="blue")
    assert not result.passed and "production arm is 'blue'" in result.reasons[0]


def test_a_verdict_of_another_experiment_or_not_json_stops_the_gate(s3):
    put_verdict(s3, "other", 0.5, 0.6)
    s3.copy_object(Bucket=BUCKET, Key=verdict_key("answer-style"), CopySource={"Bucket": BUCKET, "Key": verdict_key("other")})
    assert "is a verdict of 'other'" in gate(s3, now=dt.datetime.now(dt.timezone.utc)).reasons[0]
    s3.put_object(Bucket=BUCKET, Key=verdict_key("answer-style"), Body=b"{not json")
    assert "is not JSON" in gate(s3).reasons[0]
