"""``llmops release check`` and ``llmops delivery doctor|gate``, offline."""

from __future__ import annotations

import json

from llmops.cli import main as cli
from llmops.config import REPO_ROOT


def test_release_check_accepts_the_committed_manifest(capsys):
    assert cli(["release", "check", str(REPO_ROOT / "release.json"), "--env", "prod"]) == 0
    assert "release example from dev: ok (models: assistant v1; 3 prompt alias pins)" in capsys.readouterr().out


def test_release_check_names_a_prompt_version_absent_from_the_files(tmp_path, capsys):
    raw = json.loads((REPO_ROOT / "release.json").read_text())
    raw["prompts"]["ticket-triage"]["prod"]["content_hash"] = "f" * 64
    path = tmp_path / "release.json"
    path.write_text(json.dumps(raw))
    assert cli(["release", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "prompts.ticket-triage.prod: version 1 (hash ffffffffffff) is not the content of prompts/ticket-triage.yaml" in err


def test_release_check_of_a_missing_file(tmp_path, capsys):
    assert cli(["release", "check", str(tmp_path / "nope.json")]) == 2
    assert "no release manifest" in capsys.readouterr().err


def test_doctor_prints_one_bootstrap_per_account_trusting_the_tooling_account(capsys):
    assert cli(["delivery", "doctor"]) == 0
    out = capsys.readouterr().out
    assert "npx cdk bootstrap aws://111111111111/us-east-1 --trust 333333333333" in out
    assert "npx cdk bootstrap aws://222222222222/us-east-1 --trust 333333333333" in out
    assert "--cloudformation-execution-policies" in out and "delivery.example is true" in out


def test_gate_passes_the_committed_release_and_stops_a_bad_one(tmp_path, capsys):
    assert cli(["delivery", "gate", "--env", "staging", "--release", str(REPO_ROOT / "release.json")]) == 0
    raw = json.loads((REPO_ROOT / "release.json").read_text())
    raw["models"]["assistant"]["metrics"]["rouge_l"] = 0.05
    path = tmp_path / "release.json"
    path.write_text(json.dumps(raw))
    assert cli(["delivery", "gate", "--env", "prod", "--release", str(path)]) == 1
    assert "gate prod: stopped" in capsys.readouterr().err


def test_gate_reads_the_experiment_verdict_and_stops_on_a_worse_arm(monkeypatch, capsys):
    import datetime as _dt

    import boto3
    from moto import mock_aws

    from llmops.cli import delivery as delivery_cli
    from tests.helpers import config_with

    end = (_dt.date.today() + _dt.timedelta(days=20)).isoformat()
    experiment = {"kind": "prompt-ab", "prompt": "rag-answer", "end": end, "metrics": ["relevance"],
                  "arms": [{"name": "v1", "version": 1, "weight": 80}, {"name": "v2", "version": 2, "weight": 20}]}
    config = config_with("staging", {"experiments": {"answer-style": experiment}})
    monkeypatch.setattr(delivery_cli, "_config", lambda: config)
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LLMOPS_GATE_ROLE_ARN", raising=False)
    verdict = {"experiment": "answer-style", "status": "winner", "winner": "v1", "samples": {"v1": 500, "v2": 500},
               "min_samples": 200, "alpha": 0.05, "notes": [],
               "judged_at": _dt.datetime.now(_dt.timezone.utc).isoformat(),
               "comparisons": [{"metric": "relevance", "control": "v1", "treatment": "v2", "n_control": 500,
                                "n_treatment": 500, "mean_control": 0.61, "mean_treatment": 0.52, "difference": -0.09,
                                "ci_low": -0.12, "ci_high": -0.06, "p_value": 0.0001, "p_adjusted": 0.0001,
                                "significant": True, "higher_is_better": True, "better": "v1"}]}
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="llmops-stg-data-111111111111-us-east-1")
        args = ["delivery", "gate", "--env", "staging", "--release", str(REPO_ROOT / "release.json")]
        assert cli(args) == 1
        assert "experiment answer-style: stopped: no verdict at s3://llmops-stg-data-111111111111-us-east-1/" \
               "experiments/verdicts/answer-style/latest.json" in capsys.readouterr().err
        s3.put_object(Bucket="llmops-stg-data-111111111111-us-east-1", Key="experiments/verdicts/answer-style/latest.json",
                      Body=json.dumps(verdict).encode())
        assert cli(args) == 1
        assert "v2 is worse than v1 on relevance: 0.52 vs 0.61" in capsys.readouterr().err
        assert cli(args + ["--offline"]) == 0


def test_a_release_pins_the_images_the_source_environment_serves():
    from llmops.config import load_config
    from llmops.delivery.release import image_tag_pins, parse_release, served_images
    from llmops.inference import image

    dev = load_config().get("dev")
    images = served_images(dev)
    assert set(images) == {dev.inference.llm.container, dev.inference.embeddings.container}
    for family, uri in images.items():
        row = image(family)
        assert uri == f"{row['registries']['us-east-1']}.dkr.ecr.us-east-1.amazonaws.com/{row['repository']}:{row['tag']}"
    # The manifest accepts them, and synth reads back exactly the committed tag.
    manifest = parse_release({"schema_version": 1, "name": "r", "source_environment": "dev",
                              "created": "2026-12-02T00:00:00+00:00", "models": {}, "prompts": {}, "images": images})
    assert image_tag_pins(manifest) == {f: (image(f)["repository"], image(f)["tag"]) for f in images}
