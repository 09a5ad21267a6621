"""The train step on CPU against a tiny Llama built in the test (no download, no GPU)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pipelines.steps import train as train_step
from pipelines.steps.modeling import load_causal_lm  # dtype= or torch_dtype= by version
from pipelines.steps._io import StepFailed, write_jsonl
from pipelines.steps.dataset import to_prompt
from tests.pipelines.conftest import TOY_PAIRS

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.xdist_group("fine-tuning-train")  # the module-scoped LoRA run is shared


def _prepared(tmp_path: Path) -> Path:
    rows = []
    for question, answer in TOY_PAIRS:
        prompt, completion = to_prompt({"instruction": question, "response": answer}, "instruction")
        rows.append({"prompt": prompt, "completion": completion})
    write_jsonl(tmp_path / "prepared" / "train.jsonl", rows)
    write_jsonl(tmp_path / "prepared" / "validation.jsonl", rows[:2])
    return tmp_path / "prepared"


def _args(tmp_path: Path, model_dir: Path, **overrides) -> list[str]:
    values = {
        "train_dir": _prepared(tmp_path),
        "model_dir": model_dir,
        "output_dir": tmp_path / "out",
        "checkpoint_dir": tmp_path / "ckpt",
        "strategy": "lora",
        "learning_rate": 1e-2,
        "lora_r": 8,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "max_length": 64,
        "per_device_batch_size": 6,
        "max_steps": 30,
        "logging_steps": 5,
        "gradient_checkpointing": "false",
        "use_cpu": "true",
    }
    values.update(overrides)
    return [item for key, value in values.items() for item in (f"--{key}", str(value))]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_model_dir):
    tmp_path = tmp_path_factory.mktemp("lora")
    args = train_step.build_parser().parse_args(_args(tmp_path, tiny_model_dir))
    report = train_step.train(args)
    return tmp_path, report


def test_loss_is_finite_and_falls_on_a_memorisable_set(lora_run):
    _, report = lora_run
    losses = report["loss_history"]
    assert len(losses) >= 4
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.5 * losses[0], losses


def _logits(model, tokenizer, text: str):
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_saved_adapter_reloads_with_the_same_logits_as_the_merged_weights(lora_run, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoTokenizer

    tmp_path, _ = lora_run
    out = tmp_path / "out"
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    prompt, _ = to_prompt({"instruction": TOY_PAIRS[0][0], "response": "x"}, "instruction")

    base = load_causal_lm(str(tiny_model_dir), dtype=torch.float32)
    base_logits = _logits(base, tokenizer, prompt)
    reloaded = PeftModel.from_pretrained(base, str(out / "adapter")).eval()
    adapter_logits = _logits(reloaded, tokenizer, prompt)
    merged = load_causal_lm(str(out), dtype=torch.float32).eval()
    merged_logits = _logits(merged, tokenizer, prompt)

    assert not torch.allclose(adapter_logits, base_logits, atol=1e-3), "the adapter changed nothing"
    torch.testing.assert_close(adapter_logits, merged_logits, atol=1e-4, rtol=1e-4)
    # The tuned model answers the memorised question.
    assert tokenizer.decode(int(merged_logits[0, -1].argmax())) == TOY_PAIRS[0][1]


def test_merged_weights_use_the_layout_tgi_and_djl_load(lora_run):
    from safetensors import safe_open

    tmp_path, _ = lora_run
    out = tmp_path / "out"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        assert (out / name).is_file(), name
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    with safe_open(str(out / "model.safetensors"), framework="pt") as fh:
        keys = list(fh.keys())
    # Plain transformers names: no peft wrappers or LoRA matrices left in the merged file.
    assert "model.embed_tokens.weight" in keys and "lm_head.weight" in keys
    assert not any("lora_" in k or k.startswith("base_model.") for k in keys)
    assert json.loads((out / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert json.loads((out / "train_report.json").read_text())["strategy"] == "lora"


def test_full_fine_tuning_writes_a_loadable_model(tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    args = train_step.build_parser().parse_args(
        _args(tmp_path, tiny_model_dir, strategy="full", max_steps=6, learning_rate=1e-3)
    )
    report = train_step.train(args)
    assert all(math.isfinite(x) for x in report["loss_history"])
    assert not (tmp_path / "out" / "adapter").exists()
    AutoModelForCausalLM.from_pretrained(str(tmp_path / "out"))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"lora_r": 0}, "lora_r must be at least 1"),
        ({"learning_rate": -1}, "learning_rate must be a positive number"),
        ({"strategy": "qlora"}, "qlora needs a CUDA GPU"),
    ],
)
def test_bad_hyperparameters_fail_with_a_clear_message(tmp_path, tiny_model_dir, overrides, message):
    args = train_step.build_parser().parse_args(_args(tmp_path, tiny_model_dir, **overrides))
    with pytest.raises(StepFailed, match=message):
        train_step.train(args)


def test_unknown_strategy_is_rejected_by_the_argument_parser(tmp_path, tiny_model_dir):
    with pytest.raises(SystemExit):
        train_step.build_parser().parse_args(_args(tmp_path, tiny_model_dir, strategy="dora"))


def test_gradient_checkpointing_with_lora_trains(tmp_path, tiny_model_dir):
    args = train_step.build_parser().parse_args(
        _args(tmp_path, tiny_model_dir, max_steps=3, gradient_checkpointing="true", merge_weights="false")
    )
    report = train_step.train(args)
    assert all(math.isfinite(x) for x in report["loss_history"])
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "out" / "model.safetensors").exists()  # no merge requested


def test_training_logs_parameters_and_metrics_to_mlflow_when_configured(tmp_path, tiny_model_dir, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "llmops-test-ft")
    args = train_step.build_parser().parse_args(_args(tmp_path, tiny_model_dir, max_steps=4, logging_steps=2))
    train_step.train(args)
    client = mlflow.tracking.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("llmops-test-ft")
    run = client.search_runs([experiment.experiment_id])[0]
    assert "loss" in run.data.metrics and math.isfinite(run.data.metrics["loss"])
    assert run.data.params["learning_rate"] == "0.01"


def test_mlflow_on_a_managed_server_without_the_plugin_is_skipped_with_a_warning(monkeypatch, capsys):
    import importlib.util

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/x")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sagemaker_mlflow" else real(name, *a))
    assert train_step.mlflow_reporting() == []
    assert "sagemaker_mlflow" in capsys.readouterr().out
