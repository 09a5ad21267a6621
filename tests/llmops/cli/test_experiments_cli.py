"""``llmops experiments judge --local`` and ``promote``: verdict, HTML report, MLflow run, config round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from llmops.cli import main as cli
from llmops.config import DEFAULT_CONFIG_PATH, ConfigError
from tests.helpers import config_with

EXPERIMENT = {
    "kind": "prompt-ab", "prompt": "rag-answer", "alias": "prod",
    "arms": [{"name": "v1", "version": 1, "weight": 90}, {"name": "v2", "version": 2, "weight": 10}],
    "metrics": ["relevance", "latency_ms"], "min_samples": 50, "alpha": 0.05, "end": "2099-12-31",
}


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
    text = text.replace("    log_retention_days: 30\n", "    log_retention_days: 30\n    experiments:\n      answer-v2:  # trying the shorter prompt\n"
                        + "".join(f"        {line}\n" for line in yaml.safe_dump(EXPERIMENT, sort_keys=False).splitlines()), 1)
    path = tmp_path / "environments.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr("llmops.config.DEFAULT_CONFIG_PATH", path)
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "state"))
    return path


def _log(tmp_path, shift=0.1, n=120):
    rng = np.random.default_rng(0)
    path = tmp_path / "interactions.jsonl"
    with path.open("w") as handle:
        for version, base in ((1, 0.6), (2, 0.6 + shift)):
            for i in range(n):
                handle.write(json.dumps({"prompt": "q", "response": "a", "metadata": {"prompt_version": version,
                             "latency_ms": float(rng.normal(800, 40))}, "metrics": {"relevance": float(rng.normal(base, 0.08))}}) + "\n")
        handle.write("{broken\n")
    return path


def test_judge_prints_the_winner_writes_html_and_logs_to_mlflow(config_file, tmp_path, capsys):
    records = _log(tmp_path)
    html = tmp_path / "report.html"
    assert cli(["experiments", "judge", "answer-v2", "--records", str(records), "--html", str(html), "--json"]) == 0
    out = capsys.readouterr()
    verdict = json.loads(out.out)
    assert verdict["status"] == "winner" and verdict["winner"] == "v2" and verdict["samples"] == {"v1": 120, "v2": 120}
    assert any("1 malformed record line(s) skipped" in n for n in verdict["notes"]) and "not JSON" in out.err
    page = html.read_text()
    assert "<svg" in page and "relevance" in page and "winner v2" in page
    import mlflow

    # A client, not mlflow.set_tracking_uri: the global URI would leak into later tests of this process.
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'state' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("dev-answer-v2").experiment_id])
    assert len(runs) == 1 and runs[0].data.tags["winner"] == "v2"


def test_too_few_samples_exits_non_zero_only_when_asked(config_file, tmp_path, capsys):
    records = _log(tmp_path, n=20)
    assert cli(["experiments", "judge", "answer-v2", "--records", str(records), "--no-mlflow"]) == 0
    assert "not-yet-decidable" in capsys.readouterr().out
    assert cli(["experiments", "judge", "answer-v2", "--records", str(records), "--no-mlflow", "--require-decision"]) == 1


def test_unknown_experiment_is_named(config_file, capsys):
    assert cli(["experiments", "judge", "nope", "--local"]) == 2
    assert "no experiment 'nope'; declared: answer-v2" in capsys.readouterr().err


def test_promote_writes_the_winner_keeping_comments_and_order(config_file, capsys):
    before = config_file.read_text()
    assert cli(["experiments", "promote", "answer-v2", "--winner", "v2"]) == 0
    after = config_file.read_text()
    assert "# trying the shorter prompt" in after and "# replace with your staging account before deploying" in after
    exp = yaml.safe_load(after)["environments"]["dev"]["experiments"]["answer-v2"]
    assert exp["winner"] == "v2" and [a["weight"] for a in exp["arms"]] == [0, 100]
    changed = [l for l in after.splitlines() if l not in before.splitlines()]
    # Only the experiment's own lines change (the fixture wrote its list in another indent style).
    assert changed and all(l.strip().split(":")[0].lstrip("- ") in {"name", "version", "weight", "winner", "relevance", "latency_ms"} for l in changed), changed
    assert cli(["experiments", "promote", "answer-v2", "--winner", "v9"]) == 2


@pytest.mark.parametrize("change, message", [
    ({"arms": [{"name": "a", "version": 1, "weight": 50}, {"name": "b", "version": 2, "weight": 40}]}, "weights must sum to 100"),
    ({"kind": "model-ab", "arms": [{"name": f"a{i}", "variant": f"v{i}", "weight": 10} for i in range(11)], "endpoint": "llm"},
     "at most 10"),
    ({"kind": "model-shadow", "endpoint": "llm", "arms": [{"name": "a", "variant": "x", "shadow": True},
                                                         {"name": "b", "variant": "y", "shadow": True}]}, "exactly one production and one shadow"),
    ({"metrics": ["vibes"]}, "unknown metric(s) ['vibes']"),
    ({"end": "2020-01-01"}, "end: 2020-01-01 is past"),
    ({"kind": "embedding-ab", "arms": [{"name": "a", "model": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384, "weight": 50},
                                       {"name": "b", "model": "BAAI/bge-base-en-v1.5", "dimension": 384, "weight": 50}]},
     "arms.b.dimension: BAAI/bge-base-en-v1.5 gives 768 dimensions"),
    ({"kind": "embedding-ab", "arms": [{"name": "a", "model": "BAAI/bge-base-en-v1.5", "dimension": 768, "weight": 50},
                                       {"name": "b", "model": "BAAI/bge-base-en-v1.5", "dimension": 768, "weight": 50}]},
     "the control arm serves the current index (384 dimensions)"),
])
def test_experiments_aws_would_refuse_are_refused_naming_the_field(change, message):
    with pytest.raises(ConfigError) as err:
        config_with("dev", {"experiments": {"x-test": {**EXPERIMENT, **change}}})
    assert message in str(err.value)


def test_judge_reads_the_metrics_table_in_s3_and_logs_to_the_given_tracking_uri(tmp_path, monkeypatch, capsys):
    """``--aws``: the scheduled job's selection over the environment's table, logged to MLflow from the CLI."""
    import boto3
    from moto import mock_aws

    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    raw["environments"]["staging"]["experiments"] = {"answer-v2": {**EXPERIMENT, "min_samples": 40}}
    path = tmp_path / "environments.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    monkeypatch.setattr("llmops.config.DEFAULT_CONFIG_PATH", path)
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "state"))
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    rng = np.random.default_rng(3)
    import datetime as dt

    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    rows = [{"interaction_id": f"{arm}-{i}", "experiment": "answer-v2", "arm": arm, "prompt_id": "rag-answer",
             "relevance": float(rng.normal(base, 0.05)), "latency_ms": float(rng.normal(800, 30))}
            for arm, base in (("v1", 0.6), ("v2", 0.7)) for i in range(50)]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        bucket = "llmops-stg-data-111111111111-us-east-1"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=f"monitoring/metrics/dt={today}/part-0.json",
                      Body="\n".join(json.dumps(r) for r in rows).encode())
        uri = f"sqlite:///{tmp_path / 'server.db'}"
        assert cli(["experiments", "judge", "answer-v2", "--env", "staging", "--aws", "--json", "--tracking-uri", uri]) == 0
    out = capsys.readouterr()
    verdict = json.loads(out.out)
    assert verdict["samples"] == {"v1": 50, "v2": 50} and verdict["winner"] == "v2"
    assert "Read 100 row(s) in 1 object(s) of s3://llmops-stg-data-111111111111-us-east-1/monitoring/metrics/" in out.err
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    assert len(client.search_runs([client.get_experiment_by_name("staging-answer-v2").experiment_id])) == 1
    # the same rows as a file: split the same way
    records = tmp_path / "rows.jsonl"
    records.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert cli(["experiments", "judge", "answer-v2", "--env", "staging", "--records", str(records), "--json", "--no-mlflow"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == {"v1": 50, "v2": 50}
    assert cli(["experiments", "judge", "answer-v2", "--env", "staging", "--aws", "--local"]) == 2
EMBEDDING_EXPERIMENT = {
    "kind": "embedding-ab", "end": "2099-12-31", "arms": [
        {"name": "minilm", "weight": 50, "model": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384},
        {"name": "bge", "weight": 50, "model": "BAAI/bge-base-en-v1.5", "dimension": 768}],
}


def test_backfill_queues_every_current_document_of_an_embedding_experiment(config_file, monkeypatch, capsys):
    import boto3
    from moto import mock_aws

    text = config_file.read_text(encoding="utf-8").replace("      answer-v2:  # trying the shorter prompt\n", "      emb-test:\n"
        + "".join(f"        {line}\n" for line in yaml.safe_dump(EMBEDDING_EXPERIMENT, sort_keys=False).splitlines())
        + "      answer-v2:  # trying the shorter prompt\n", 1)
    config_file.write_text(text, encoding="utf-8")
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3, sqs = boto3.client("s3"), boto3.client("sqs")
        s3.create_bucket(Bucket="data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for key in ("uploads/a.txt", "curated/b.md", "raw/c.txt"):
            s3.put_object(Bucket="data", Key=key, Body=b"text")
        queue = sqs.create_queue(QueueName="ingest")["QueueUrl"]
        assert cli(["experiments", "backfill", "emb-test", "--bucket", "data", "--queue-url", queue]) == 0
        assert "2 document(s) queued for ingestion into every arm of emb-test" in capsys.readouterr().out
        assert cli(["experiments", "backfill", "answer-v2", "--bucket", "data", "--queue-url", queue]) == 2
        assert "experiments.answer-v2: not an embedding-ab experiment; declared: emb-test" in capsys.readouterr().err
