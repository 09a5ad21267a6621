"""The judge job in AWS: metrics-table rows in moto S3 -> each experiment's arms -> verdict files."""

from __future__ import annotations

import datetime as dt
import gzip
import importlib
import json

import boto3
import numpy as np
import pytest
from moto import mock_aws

from lambdas.runtime.experiments.judge import judge
from lambdas.runtime.experiments.scheduled import Experiment, as_record, parse_experiments, read_metrics, run, select_arms
from tests.lambdas.context import LambdaContext

BUCKET = "llmops-dev-data"
NOW = dt.datetime(2026, 12, 2, 6, 0, 5, tzinfo=dt.timezone.utc)
SPECS = {
    "answer-v2": {"kind": "prompt-ab", "arms": [{"name": "v1"}, {"name": "v2"}], "metrics": ["relevance", "latency_ms"],
                  "min_samples": 60, "alpha": 0.05},
    "tuned-vs-base": {"kind": "model-ab", "endpoint": "llmops-dev-llm", "metrics": ["relevance"], "min_samples": 60,
                      "alpha": 0.05, "arms": [{"name": "base", "variant": "primary"}, {"name": "tuned", "variant": "tuned"}]},
    "done": {"kind": "prompt-ab", "arms": [{"name": "a"}, {"name": "b"}], "metrics": ["relevance"], "min_samples": 10,
             "alpha": 0.05, "winner": "b"},
}


def row(rng, i: int, relevance: float, **extra) -> dict:
    """A row as the batch scorer writes it: the Glue table's columns plus experiment/arm/variant/latency_ms."""
    return {"interaction_id": f"i-{i}", "source": "rag", "use_case": "assistant", "prompt_id": "rag-answer",
            "prompt_version": 1, "model": "llmops-dev-llm", "recorded_at": "2026-12-01T10:00:00Z",
            "relevance": float(np.clip(rng.normal(relevance, 0.08), 0, 1)), "hallucination": 0.1, "toxicity": 0.01,
            "sentiment": 0.2, "readability": 60.0, "repetition": 0.0, "refusal": 0.0, "jailbreak": 0.0, "injection": 0.0,
            "top_score": 0.7, "prompt_tokens": 120, "response_tokens": 80, "latency_ms": float(rng.normal(900, 50)), **extra}


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    rng = np.random.default_rng(7)
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        today = [row(rng, i, 0.55, experiment="answer-v2", arm="v1") for i in range(40)]
        today += [row(rng, 100 + i, 0.70, experiment="answer-v2", arm="v2") for i in range(40)]
        today += [row(rng, 200 + i, 0.9, experiment="other", arm="v1") for i in range(30)]  # another experiment
        yesterday = [row(rng, 300 + i, 0.55, experiment="answer-v2", arm="v1") for i in range(30)]
        yesterday += [row(rng, 400 + i, 0.70, experiment="answer-v2", arm="v2") for i in range(30)]
        model = [row(rng, 500 + i, 0.6, variant="primary", endpoint="llmops-dev-llm") for i in range(70)]
        model += [row(rng, 600 + i, 0.6, variant="tuned") for i in range(70)]
        model += [row(rng, 700 + i, 0.0, variant="primary", endpoint="llmops-dev-embeddings") for i in range(50)]
        lines = lambda rows: "\n".join(json.dumps(r) for r in rows).encode()  # noqa: E731
        s3.put_object(Bucket=BUCKET, Key="monitoring/metrics/dt=2026-12-02/part-0.json", Body=lines(today) + b"\n{broken\n")
        s3.put_object(Bucket=BUCKET, Key="monitoring/metrics/dt=2026-12-01/part-0.json.gz", Body=gzip.compress(lines(yesterday)))
        s3.put_object(Bucket=BUCKET, Key="monitoring/metrics/dt=2026-12-01/part-1.json", Body=lines(model))
        s3.put_object(Bucket=BUCKET, Key="monitoring/metrics/dt=2026-11-01/old.json", Body=lines(today))  # outside the window
        yield s3


def test_rows_become_records_with_their_metric_columns():
    record = as_record({"interaction_id": "x", "prompt_version": 2, "relevance": 0.5, "latency_ms": 812, "arm": "v2",
                        "metrics": {"cost_per_request": 0.001}})
    assert record["metrics"] == {"relevance": 0.5, "latency_ms": 812.0, "cost_per_request": 0.001}
    assert record["metadata"] == {"interaction_id": "x", "prompt_version": 2, "arm": "v2"}


def test_arms_are_selected_by_experiment_and_arm_or_by_variant_on_the_endpoint(table):
    rows = read_metrics(table, BUCKET, today=NOW.date(), days=2)
    assert rows.objects == 3 and rows.malformed == 1
    experiments = parse_experiments(json.dumps(SPECS))
    prompt = select_arms(rows.rows, experiments["answer-v2"])
    assert {arm: len(r) for arm, r in prompt.items()} == {"v1": 70, "v2": 70}
    model = select_arms(rows.rows, experiments["tuned-vs-base"])
    # the embedding endpoint's "primary" rows never count, nor rows that name an experiment
    assert {arm: len(r) for arm, r in model.items()} == {"base": 70, "tuned": 70}


def test_the_handler_writes_latest_and_a_timestamped_verdict(table, monkeypatch):
    monkeypatch.setenv("DATA_BUCKET", BUCKET)
    monkeypatch.setenv("EXPERIMENTS", json.dumps(SPECS))
    monkeypatch.setenv("LOOKBACK_DAYS", "2")
    monkeypatch.setenv("PLATFORM_ENVIRONMENT_NAME", "dev")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LLMOps")
    module = importlib.import_module("lambdas.experiments_judge.handler")
    module.s3.cache_clear()
    result = module.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, LambdaContext())
    assert [r["experiment"] for r in result["judged"]] == ["answer-v2", "tuned-vs-base"]  # "done" is promoted
    latest = json.loads(table.get_object(Bucket=BUCKET, Key="experiments/verdicts/answer-v2/latest.json")["Body"].read())
    keys = [o["Key"] for o in table.list_objects_v2(Bucket=BUCKET, Prefix="experiments/verdicts/answer-v2/")["Contents"]]
    stamped = "experiments/verdicts/answer-v2/" + result["judged"][0]["keys"][1].rsplit("/", 1)[1]
    assert sorted(keys) == sorted(["experiments/verdicts/answer-v2/latest.json", stamped])
    assert json.loads(table.get_object(Bucket=BUCKET, Key=stamped)["Body"].read()) == latest
    # the same shape as `llmops experiments judge --json` (Verdict.to_dict)
    assert set(latest) == set(judge("x", {"a": [], "b": []}, ["relevance"]).to_dict())
    assert latest["status"] == "winner" and latest["winner"] == "v2" and latest["samples"] == {"v1": 70, "v2": 70}
    assert any("MLflow" in n and "--tracking-uri" in n for n in latest["notes"])
    assert any("1 malformed metrics line(s) skipped" in n for n in latest["notes"])
    model = json.loads(table.get_object(Bucket=BUCKET, Key="experiments/verdicts/tuned-vs-base/latest.json")["Body"].read())
    assert model["samples"] == {"base": 70, "tuned": 70} and model["status"] == "no-difference"


def test_on_demand_judges_one_experiment_and_names_unknown_ones(table):
    experiments = parse_experiments(json.dumps(SPECS))
    (only,) = run(table, bucket=BUCKET, experiments=experiments, environment="dev", lookback_days=2, now=NOW, only="done")
    assert only["experiment"] == "done" and only["status"] == "not-yet-decidable"
    assert only["keys"] == ["experiments/verdicts/done/latest.json", "experiments/verdicts/done/2026-12-02T06-00-05Z.json"]
    with pytest.raises(ValueError, match="experiment 'nope' is not declared in dev; declared: answer-v2, tuned-vs-base, done"):
        run(table, bucket=BUCKET, experiments=experiments, environment="dev", lookback_days=2, now=NOW, only="nope")


def test_a_bad_spec_is_named():
    with pytest.raises(ValueError, match=r"EXPERIMENTS.x: not an experiment spec"):
        parse_experiments(json.dumps({"x": {"kind": "prompt-ab"}}))
    with pytest.raises(ValueError, match="EXPERIMENTS: not JSON"):
        parse_experiments("{")
    assert Experiment.from_dict("y", SPECS["done"]).winner == "b"


def test_rows_the_monitoring_scorer_writes_reach_the_judges_arms():
    """The contract between the scorer (metrics table rows) and the judge, on the real code of both."""
    from lambdas.runtime.experiments.scheduled import Arm, Experiment, select_arms
    from lambdas.runtime.monitoring import batch as b

    records = []
    for n in range(6):
        arm = "v1" if n % 2 else "v2"
        records.append((f"i-{n}", {"prompt": "Refund window?", "question": "Refund window?", "response": f"30 days ({n}).",
                                   "contexts": ["Refunds within 30 days."],
                                   "metadata": {"id": f"i-{n}", "source": "rag", "prompt_id": "rag-answer",
                                                "prompt_version": 1 if arm == "v1" else 2,
                                                "experiment": "answer-v2", "arm": arm}}))
    rows = b.build_rows(b.rag_batch(records), b.UseCases.from_json(None))
    experiment = Experiment(name="answer-v2", kind="prompt-ab", arms=(Arm("v1"), Arm("v2")), metrics=("refusal",),
                            min_samples=2, alpha=0.05)
    arms = select_arms(rows, experiment)
    assert {k: len(v) for k, v in arms.items()} == {"v1": 3, "v2": 3}
    assert all(0 <= r["metrics"]["refusal"] <= 1 and r["metadata"]["arm"] == arm for arm, v in arms.items() for r in v)
