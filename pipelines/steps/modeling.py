"""Tokenisation and model loading shared by the train and evaluate steps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

IGNORE_INDEX = -100  # label value the loss skips: prompt tokens are context, not targets


def encode_example(tokenizer: Any, prompt: str, completion: str, max_length: int) -> dict[str, list[int]]:
    """Token ids of prompt + completion + EOS, with the prompt masked out of the labels.

    Truncation cuts the prompt's start first, so the completion (what the model learns) survives.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        completion_ids = completion_ids + [tokenizer.eos_token_id]
    completion_ids = completion_ids[:max_length]
    keep_prompt = max(0, max_length - len(completion_ids))
    prompt_ids = prompt_ids[len(prompt_ids) - keep_prompt :] if keep_prompt else []
    input_ids = prompt_ids + completion_ids
    labels = [IGNORE_INDEX] * len(prompt_ids) + completion_ids
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def has_neuron() -> bool:
    try:
        import torch_neuronx  # noqa: F401  (present only in the Neuron training image)
    except ImportError:
        return False
    return True


def best_dtype():
    """bf16 where the accelerator has it (Ampere+ GPUs, Trainium), else fp32."""
    import torch

    if has_neuron() or (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float32


def load_tokenizer(model_dir: str | Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # causal LMs often ship without a pad token
    return tokenizer


def world_size() -> int:
    """Processes of this training run (torchrun sets WORLD_SIZE; 1 when run directly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def dtype_argument() -> str:
    """``dtype`` from transformers 4.56 on (the GPU image); ``torch_dtype`` before (4.55, the Neuron image)."""
    from importlib.metadata import version

    major, minor = (int(part) for part in version("transformers").split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def load_causal_lm(model_dir: str | Path, dtype=None, quantization_config=None):
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {dtype_argument(): dtype or best_dtype()}
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
        # One process: spread the 4-bit model over the node's GPUs. Under torchrun each process
        # holds the whole 4-bit model on its own GPU (DDP replicates it; "auto" cannot be replicated).
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))} if world_size() > 1 else "auto"
    return AutoModelForCausalLM.from_pretrained(str(model_dir), **kwargs)
