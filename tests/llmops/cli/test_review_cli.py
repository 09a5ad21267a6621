"""``llmops review preview|ingest`` on this machine."""

from __future__ import annotations

import json

from llmops.cli import main as cli
from tests.lambdas.human_review.test_routing_loops_results import REVIEW, _output


def test_preview_renders_a_sample_or_a_given_interaction(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "state"))
    out = tmp_path / "review.html"
    assert cli(["review", "preview", "--out", str(out)]) == 0
    assert "How long do refunds take?" in out.read_text()
    interaction = tmp_path / "i.json"
    interaction.write_text(REVIEW.model_dump_json())
    assert cli(["review", "preview", "--interaction", str(interaction), "--out", str(out)]) == 0
    assert "q-2026-12-02-0001" in out.read_text()
    interaction.write_text('{"question": "no id"}')
    assert cli(["review", "preview", "--interaction", str(interaction), "--out", str(out)]) == 2
    assert "interaction_id" in capsys.readouterr().err


def test_ingest_writes_a_local_dataset_version_and_counts_rejects(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "state"))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_output({"rating": 2, "corrected_answer": "Five business days [1]."})))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert cli(["review", "ingest", str(good), str(bad)]) == 1
    out = capsys.readouterr()
    assert "1 reviews ingested, 1 rejected" in out.out and "bad.json: output: not JSON" in out.err
    manifest = json.loads((tmp_path / "state" / "datasets" / "reviewed-answers" / "v1" / "manifest.json").read_text())
    assert manifest["record_count"] == 1
