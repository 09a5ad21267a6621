"""`llmops monitor score|baseline|drift`: JSON keys, rejected lines named, baselines refused when they differ."""

from __future__ import annotations

import base64
import json
import random

import pytest

from llmops.cli import main

pytestmark = pytest.mark.xdist_group("minilm")

REQUIRED = {"toxicity", "sentiment", "readability", "repetition", "refusal", "jailbreak", "injection", "relevance",
            "prompt_tokens", "response_tokens"}
GOOD = ["The notice period is thirty days.", "You can take twenty-five days of leave a year.",
        "Expenses are refunded within two weeks.", "The office opens at eight in the morning."]
BAD = ["I'm sorry, but I can't help with that.", "I cannot assist with that request.", "As an AI, I am not able to help."]


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def interactions(n, seed, answers):
    rng = random.Random(seed)
    return [{"prompt": f"Question {i} about the handbook?", "response": rng.choice(answers)} for i in range(n)]


def test_score_json_has_the_documented_keys(tmp_path, capsys):
    capture = {"captureData": {
        "endpointInput": {"data": base64.b64encode(b'{"inputs": "Tell me a joke"}').decode(), "encoding": "BASE64"},
        "endpointOutput": {"data": '[{"generated_text": "Why did the chicken cross the road?"}]', "encoding": "JSON"}},
        "eventMetadata": {"eventId": "ev-9"}}
    path = write(tmp_path / "in.jsonl", [
        {"prompt": "What is the notice period?", "response": "Thirty days.", "contexts": ["Notice: thirty days."]},
        capture])
    assert main(["monitor", "score", str(path), "--json"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(out) == 2 and all(REQUIRED <= set(row) for row in out)
    assert "hallucination" in out[0] and "hallucination" not in out[1]
    assert out[1]["id"] == "ev-9"


def test_score_names_rejected_lines_and_goes_on(tmp_path, capsys):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"prompt": "p", "response": "Fine."}\nnot json\n{"prompt": "p"}\n{"prompt": "\xff", "response": "r"}\n'
                     b'{"prompt": "q", "response": "Also fine."}\n')
    assert main(["monitor", "score", str(path), "--no-model"]) == 2
    captured = capsys.readouterr()
    assert f"{path}:2: not JSON" in captured.err
    assert f"{path}:3: missing 'response'" in captured.err
    assert f"{path}:4: not UTF-8" in captured.err
    assert f"{path}: 3 line(s) rejected, 2 scored" in captured.err
    table = captured.out.splitlines()
    assert table[0].split()[:3] == ["line", "toxicity", "sentiment"] and len(table) == 3


@pytest.mark.parametrize(("content", "message"), [(b"", "empty file, no records to score"),
                                                    (b"\n \n", "empty file, no records to score"),
                                                    (b"\xff\xfe\n", "no usable records")])
def test_unusable_files(tmp_path, capsys, content, message):
    path = tmp_path / "f.jsonl"
    path.write_bytes(content)
    assert main(["monitor", "score", str(path)]) == 1
    assert message in capsys.readouterr().err


def test_missing_file(tmp_path, capsys):
    assert main(["monitor", "score", str(tmp_path / "nope.jsonl")]) == 1
    assert "nope.jsonl: cannot read" in capsys.readouterr().err


def test_baseline_then_drift(tmp_path, capsys):
    base = write(tmp_path / "eval.jsonl", interactions(120, 1, GOOD))
    same = write(tmp_path / "same.jsonl", interactions(120, 2, GOOD))
    shifted = write(tmp_path / "shifted.jsonl", interactions(120, 3, BAD))
    baseline = tmp_path / "baselines" / "v1.json"
    assert main(["monitor", "baseline", str(base), "--out", str(baseline)]) == 0
    assert "over 120 records written to" in capsys.readouterr().out
    doc = json.loads(baseline.read_text())
    assert doc["source"]["file"] == str(base) and "relevance" in doc["metrics"] and len(doc["centroid"]) == 384

    assert main(["monitor", "drift", "--baseline", str(baseline), str(same), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["drifted"] == [] and report["centroid_distance"] < 0.05
    # Thresholds come from the options: a PSI threshold near zero flags the small sampling differences.
    assert main(["monitor", "drift", "--baseline", str(baseline), str(same), "--json", "--psi-threshold", "0.0001",
                 "--ks-statistic", "0.5"]) == 3
    assert "response_chars" in json.loads(capsys.readouterr().out)["drifted"]

    html = tmp_path / "report.html"
    assert main(["monitor", "drift", "--baseline", str(baseline), str(shifted), "--html", str(html)]) == 3
    out = capsys.readouterr().out
    assert "refusal" in report_drifted(out) and "sentiment" in report_drifted(out)
    assert html.read_text().count("<svg") == len(doc["metric_set"]) - sum(
        1 for m in doc["metric_set"] if m not in doc["metrics"])


def report_drifted(out):
    return out.strip().splitlines()[-1]


def test_drift_refuses_a_baseline_of_another_metric_set(tmp_path, capsys):
    data = write(tmp_path / "eval.jsonl", interactions(30, 1, GOOD))
    baseline = tmp_path / "b.json"
    assert main(["monitor", "baseline", str(data), "--out", str(baseline), "--no-model"]) == 0
    capsys.readouterr()
    assert main(["monitor", "drift", "--baseline", str(baseline), str(data)]) == 1
    err = capsys.readouterr().err
    assert "baseline metric set differs (missing from the baseline: hallucination, relevance, repeatability)" in err
    baseline.write_text("{not json")
    assert main(["monitor", "drift", "--baseline", str(baseline), str(data), "--no-model"]) == 1
    assert "b.json: not a JSON baseline" in capsys.readouterr().err


def test_drift_takes_the_environments_rule_and_names_an_unknown_environment():
    import argparse

    from lambdas.runtime.monitoring.batch import DriftRule
    from llmops.cli import monitor
    from llmops.config import load_config

    cfg = load_config().get("dev").monitoring.drift
    args = argparse.Namespace(env="dev", psi_threshold=None, ks_pvalue=None, ks_statistic=None)
    assert monitor._drift_rule(args) == DriftRule(cfg.psi_threshold, cfg.ks_threshold, cfg.ks_pvalue)
    args.ks_statistic = 0.3
    assert monitor._drift_rule(args).ks_threshold == 0.3
    args.env = "nowhere"
    with pytest.raises(monitor.InputError, match="--env nowhere: env: unknown environment 'nowhere'"):
        monitor._drift_rule(args)
