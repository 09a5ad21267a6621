"""Fixtures for the fine-tuning step tests: a tiny causal LM built from a config (no download)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]

# A memorisable toy task: each instruction maps to one fixed answer.
TOY_PAIRS = [
    ("what colour is the sky", "blue"),
    ("what colour is grass", "green"),
    ("what colour is snow", "white"),
    ("what colour is coal", "black"),
    ("what colour is a lemon", "yellow"),
    ("what colour is a tomato", "red"),
]


def _vocabulary() -> list[str]:
    from pipelines.steps.dataset import CLASSIFICATION_TEMPLATE, INSTRUCTION_TEMPLATE

    words: set[str] = set()
    for text in [INSTRUCTION_TEMPLATE, CLASSIFICATION_TEMPLATE, "classify the text positive negative input"]:
        words.update(text.replace("{instruction}", " ").replace("{text}", " ").split())
    for question, answer in TOY_PAIRS:
        words.update(question.split() + answer.split())
    return sorted(words)


def build_tiny_model(target: Path, seed: int = 0) -> Path:
    """A 2-layer Llama with a word-level tokenizer, saved in Hugging Face layout."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + _vocabulary())}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        pad_token_id=vocab["<pad>"],
        tie_word_embeddings=False,
        # Wider than the 0.02 default: a frozen lm_head of tiny weights caps the logits, and LoRA
        # could not make the memorised answer confident.
        initializer_range=0.3,
    )
    model = LlamaForCausalLM(config)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target), safe_serialization=True)
    tokenizer.save_pretrained(str(target))
    return target


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama") / "model")


def write_dataset(root: Path, records: list, *, fmt: str = "instruction", name: str = "toy", version: int = 1, raw_lines: list[str] | None = None, record_count: int | None = None) -> Path:
    """Publish a dataset version in the data-prep contract layout under ``root``."""
    import hashlib

    folder = root / "datasets" / name / f"v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    lines = raw_lines if raw_lines is not None else [json.dumps(r) for r in records]
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    (folder / "data.jsonl").write_bytes(data)
    manifest = {
        "schema": "llmops.dataset-manifest/v1",
        "dataset": name,
        "version": version,
        "format": fmt,
        "record_count": len(lines) if record_count is None else record_count,
        "sha256": hashlib.sha256(data).hexdigest(),
        "sources": ["test"],
        "created_at": "2026-01-01T00:00:00Z",
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder
