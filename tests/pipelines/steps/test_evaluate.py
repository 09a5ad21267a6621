"""The evaluate step end to end on CPU with the tiny model: report shape, metrics and the gate."""

from __future__ import annotations

import json
import math
import tarfile

import pytest

from pipelines.steps import evaluate as ev
from pipelines.steps.modeling import load_causal_lm  # dtype= or torch_dtype= by version
from pipelines.steps._io import StepFailed, write_json, write_jsonl
from pipelines.steps.dataset import to_prompt
from tests.pipelines.conftest import TOY_PAIRS

torch = pytest.importorskip("torch")


def _prepared(tmp_path, fmt="instruction"):
    rows = []
    for question, answer in TOY_PAIRS:
        record = {"instruction": question, "response": answer} if fmt == "instruction" else {"text": question, "label": answer}
        prompt, completion = to_prompt(record, fmt)
        rows.append({"prompt": prompt, "completion": completion, "record": record})
    write_jsonl(tmp_path / "prepared" / "test.jsonl", rows)
    write_json(tmp_path / "prepared" / "prepare_report.json", {"dataset": "toy", "version": 3, "format": fmt, "sha256": "ab"})
    return tmp_path / "prepared"


def test_report_has_generation_metrics_and_a_failing_gate(tmp_path, tiny_model_dir):
    report = ev.evaluate(tiny_model_dir, _prepared(tmp_path), tmp_path / "out",
                         {"min_rouge_l": 0.99, "max_perplexity": 0.0}, max_new_tokens=4)
    on_disk = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert on_disk == report
    assert set(report["metrics"]) == {"perplexity", "rouge_l", "bleu", "exact_match", "token_f1"}
    assert math.isfinite(report["metrics"]["perplexity"]) and report["metrics"]["perplexity"] > 1
    assert report["dataset"]["version"] == 3 and report["samples"] == len(TOY_PAIRS)
    # An untrained model cannot reach ROUGE-L 0.99: the gate fails, naming the metric.
    assert report["check"]["passed"] is False
    assert report["check"]["reason"].startswith("rouge_l ")


def test_perplexity_of_a_model_with_zeroed_output_is_the_vocabulary_size(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    model = load_causal_lm(str(tiny_model_dir), dtype=torch.float32)
    with torch.no_grad():
        model.lm_head.weight.zero_()  # every logit 0: a uniform next-token distribution
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    rows = [{"prompt": to_prompt({"instruction": q, "response": a}, "instruction")[0], "completion": a} for q, a in TOY_PAIRS]
    assert ev.score_perplexity(model, tokenizer, rows, 64) == pytest.approx(model.config.vocab_size, rel=1e-4)


def test_classification_report_and_packed_model(tmp_path, tiny_model_dir):
    packed = tmp_path / "packed"
    packed.mkdir()
    with tarfile.open(packed / "model.tar.gz", "w:gz") as tar:
        for path in tiny_model_dir.iterdir():
            tar.add(path, arcname=path.name)
    report = ev.evaluate(packed, _prepared(tmp_path, "text-label"), tmp_path / "out", {"min_accuracy": 0.0}, max_new_tokens=2)
    assert {"accuracy", "precision", "recall", "f1", "perplexity"} <= set(report["metrics"])
    assert report["check"]["passed"] is True


def test_missing_inputs_fail_clearly(tmp_path, tiny_model_dir):
    with pytest.raises(StepFailed, match="prepare step's output is missing"):
        ev.evaluate(tiny_model_dir, tmp_path / "nothing", tmp_path / "out", {})
    with pytest.raises(StepFailed, match="no model in"):
        ev.evaluate(tmp_path, _prepared(tmp_path), tmp_path / "out", {})
