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
