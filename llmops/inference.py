"""Synth-time inference facts: typed container settings, known models, sizing, the image table.

No heavy imports (pydantic and the standard library): config validation and the inference
constructs both use it. Container variable names are checked against the containers' docs and
entrypoints (djl-serving ``lmi/deployment_guide/configurations.md``, TGI ``sagemaker-entrypoint.sh``
and launcher, vLLM's ``sagemaker-entrypoint.sh`` (``SM_VLLM_*`` -> ``vllm serve --*``), TEI's
launcher, optimum-neuron's TGI entrypoint): a misspelt name is silently ignored by the container,
so here it is an error naming the allowed names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from llmops.instance_types import INSTANCE_TYPES, InstanceType

IMAGE_TABLE_PATH = Path(__file__).resolve().parent / "inference_images.json"
LlmContainer = Literal["djl-lmi", "djl-tensorrtllm", "vllm", "tgi", "tgi-neuronx", "djl-neuronx"]
EmbeddingContainer = Literal["tei", "tei-cpu"]
LLM_CONTAINERS = ("djl-lmi", "djl-tensorrtllm", "vllm", "tgi", "tgi-neuronx", "djl-neuronx")
NEURON_CONTAINERS = ("tgi-neuronx", "djl-neuronx")

_LMI = (
    "HF_MODEL_ID", "HF_REVISION", "HF_MODEL_TRUST_REMOTE_CODE", "TENSOR_PARALLEL_DEGREE", "PIPELINE_PARALLEL_DEGREE",
    "MAX_BATCH_SIZE", "MAX_CONCURRENT_REQUESTS", "SERVING_FAIL_FAST", "OPTION_ROLLING_BATCH",
    "OPTION_MAX_ROLLING_BATCH_SIZE", "OPTION_MAX_MODEL_LEN", "OPTION_GPU_MEMORY_UTILIZATION",
    "OPTION_ENABLE_PREFIX_CACHING", "OPTION_QUANTIZE", "OPTION_DTYPE", "OPTION_MODEL_LOADING_TIMEOUT",
    "OPTION_ENABLE_LORA", "OPTION_MAX_LORAS", "OPTION_MAX_LORA_RANK", "OPTION_MAX_NUM_SEQS",
    "OPTION_ENABLE_CHUNKED_PREFILL", "OPTION_ENFORCE_EAGER", "OPTION_ASYNC_MODE", "OPTION_ENTRYPOINT",
    "OPTION_TRUST_REMOTE_CODE", "OPTION_TOOL_CALL_PARSER", "OPTION_ENABLE_AUTO_TOOL_CHOICE",
)
_TRTLLM = _LMI + ("OPTION_MAX_NUM_TOKENS", "OPTION_MAX_INPUT_LEN", "OPTION_MAX_OUTPUT_LEN")
_TGI = (
    "HF_MODEL_ID", "HF_MODEL_REVISION", "HF_MODEL_TRUST_REMOTE_CODE", "HF_MODEL_QUANTIZE", "SM_NUM_GPUS",
    "MAX_INPUT_TOKENS", "MAX_INPUT_LENGTH", "MAX_TOTAL_TOKENS", "MAX_BATCH_PREFILL_TOKENS", "MAX_BATCH_TOTAL_TOKENS",
    "MAX_BATCH_SIZE", "MAX_CONCURRENT_REQUESTS", "MAX_STOP_SEQUENCES", "MAX_BEST_OF", "DTYPE", "LORA_ADAPTERS",
    "PAYLOAD_LIMIT", "CUDA_GRAPHS", "MESSAGES_API_ENABLED",
)
_NEURON = ("HF_MODEL_ID", "HF_MODEL_REVISION", "HF_NUM_CORES", "HF_BATCH_SIZE", "HF_SEQUENCE_LENGTH",
           "HF_AUTO_CAST_TYPE", "MAX_INPUT_TOKENS", "MAX_TOTAL_TOKENS", "MAX_BATCH_SIZE", "MAX_BATCH_PREFILL_TOKENS",
           "MAX_CONCURRENT_REQUESTS")
_DJL_NEURON = ("HF_MODEL_ID", "HF_REVISION", "TENSOR_PARALLEL_DEGREE", "OPTION_ROLLING_BATCH", "OPTION_MAX_ROLLING_BATCH_SIZE",
               "OPTION_N_POSITIONS", "OPTION_DTYPE", "OPTION_MODEL_LOADING_TIMEOUT", "OPTION_ENTRYPOINT", "OPTION_MAX_MODEL_LEN")
_VLLM = ("SM_VLLM_MODEL", "SM_VLLM_REVISION", "SM_VLLM_TENSOR_PARALLEL_SIZE", "SM_VLLM_MAX_MODEL_LEN",
         "SM_VLLM_GPU_MEMORY_UTILIZATION", "SM_VLLM_DTYPE", "SM_VLLM_QUANTIZATION", "SM_VLLM_MAX_NUM_SEQS",
         "SM_VLLM_ENABLE_PREFIX_CACHING", "SM_VLLM_ENABLE_CHUNKED_PREFILL", "SM_VLLM_ENFORCE_EAGER",
         "SM_VLLM_SERVED_MODEL_NAME", "SM_VLLM_TRUST_REMOTE_CODE", "SM_VLLM_ENABLE_LORA", "SM_VLLM_MAX_LORAS",
         "SM_VLLM_KV_CACHE_DTYPE")
_TEI = ("HF_MODEL_ID", "HF_MODEL_REVISION", "MAX_BATCH_TOKENS", "MAX_CLIENT_BATCH_SIZE", "MAX_CONCURRENT_REQUESTS",
        "POOLING", "DTYPE", "AUTO_TRUNCATE", "DEFAULT_PROMPT_NAME", "PAYLOAD_LIMIT")
SETTINGS: dict[str, tuple[str, ...]] = {
    "djl-lmi": _LMI, "djl-tensorrtllm": _TRTLLM, "vllm": _VLLM, "tgi": _TGI, "tgi-neuronx": _NEURON,
    "djl-neuronx": _DJL_NEURON, "tei": _TEI, "tei-cpu": _TEI,
}
# Where each family reads the tensor-parallel degree, the model location and the loading timeout.
TP_VARIABLE = {"djl-lmi": "TENSOR_PARALLEL_DEGREE", "djl-tensorrtllm": "TENSOR_PARALLEL_DEGREE", "vllm": "SM_VLLM_TENSOR_PARALLEL_SIZE",
               "tgi": "SM_NUM_GPUS", "tgi-neuronx": "HF_NUM_CORES", "djl-neuronx": "TENSOR_PARALLEL_DEGREE"}
MODEL_VARIABLE = {"djl-lmi": "HF_MODEL_ID", "djl-tensorrtllm": "HF_MODEL_ID", "vllm": "SM_VLLM_MODEL", "tgi": "HF_MODEL_ID",
                  "tgi-neuronx": "HF_MODEL_ID", "djl-neuronx": "HF_MODEL_ID", "tei": "HF_MODEL_ID", "tei-cpu": "HF_MODEL_ID"}
# LMI's documented default model loading timeout (OPTION_MODEL_LOADING_TIMEOUT).
LMI_DEFAULT_LOADING_TIMEOUT = 1800
# Where SageMaker puts the model data of a ModelDataSource / model package inside the container.
MODEL_DIR = "/opt/ml/model"


def render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def validate_settings(container: str, settings: dict[str, object]) -> dict[str, str]:
    """The container's environment as strings; an unknown name raises naming the allowed names."""
    allowed = SETTINGS[container]
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {container} setting(s) {unknown} (the container would ignore them); "
                         f"allowed: {', '.join(sorted(allowed))}")
    bad = sorted(k for k, v in settings.items() if not isinstance(v, (str, int, float, bool)) or v is None)
    if bad:
        raise ValueError(f"{container} setting(s) {bad} must be a string, number or boolean")
    return {k: render(v) for k, v in sorted(settings.items())}


# -- models ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KnownModel:
    params_billion: float
    dtype: str  # weights as published
    context: int  # max positions
    embedding_dimension: int | None = None


KNOWN_MODELS: dict[str, KnownModel] = {
    "meta-llama/Llama-3.2-1B-Instruct": KnownModel(1.24, "bf16", 131072),
    "meta-llama/Llama-3.2-3B-Instruct": KnownModel(3.21, "bf16", 131072),
    "meta-llama/Llama-3.1-8B-Instruct": KnownModel(8.03, "bf16", 131072),
    "meta-llama/Meta-Llama-3-8B-Instruct": KnownModel(8.03, "bf16", 8192),
    "meta-llama/Llama-3.1-70B-Instruct": KnownModel(70.6, "bf16", 131072),
    "meta-llama/Llama-3.3-70B-Instruct": KnownModel(70.6, "bf16", 131072),
    "mistralai/Mistral-7B-Instruct-v0.3": KnownModel(7.25, "bf16", 32768),
    "Qwen/Qwen2.5-0.5B-Instruct": KnownModel(0.49, "bf16", 32768),
    "Qwen/Qwen2.5-1.5B-Instruct": KnownModel(1.54, "bf16", 32768),
    "Qwen/Qwen2.5-7B-Instruct": KnownModel(7.62, "bf16", 32768),
    "Qwen/Qwen2.5-72B-Instruct": KnownModel(72.7, "bf16", 32768),
    "HuggingFaceTB/SmolLM2-135M-Instruct": KnownModel(0.135, "bf16", 8192),
    "HuggingFaceTB/SmolLM2-360M-Instruct": KnownModel(0.362, "bf16", 8192),
    "HuggingFaceTB/SmolLM2-1.7B-Instruct": KnownModel(1.71, "bf16", 8192),
    "sentence-transformers/all-MiniLM-L6-v2": KnownModel(0.0227, "fp32", 256, 384),
    "BAAI/bge-small-en-v1.5": KnownModel(0.0334, "fp32", 512, 384),
    "BAAI/bge-base-en-v1.5": KnownModel(0.109, "fp32", 512, 768),
    "BAAI/bge-large-en-v1.5": KnownModel(0.335, "fp32", 512, 1024),
}
BYTES_PER_PARAM = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5, "awq": 0.5, "gptq": 0.5}
GIB = 1024**3


@dataclass(frozen=True)
class Fit:
    weights_gib: float
    reserve_gib: float
    available_gib: float

    @property
    def needed_gib(self) -> float:
        return self.weights_gib + self.reserve_gib


def weights_gib(params_billion: float, dtype: str) -> float:
    return params_billion * 1e9 * BYTES_PER_PARAM[dtype] / GIB


def kv_reserve_gib(weights: float, tp: int) -> float:
    # KV cache and activations: a fifth of the weights, at least 1 GiB per accelerator (djl-serving sizing guide).
    return max(0.2 * weights, 1.0 * tp)


def fit(instance: InstanceType, params_billion: float, dtype: str, tp: int, memory_utilization: float = 0.9) -> Fit:
    w = weights_gib(params_billion, dtype)
    return Fit(w, kv_reserve_gib(w, tp), instance.accelerator_memory_gib * tp * memory_utilization)


def types_that_fit(params_billion: float, dtype: str, accelerator: str, utilization: float = 0.9) -> list[str]:
    """Listed types of this accelerator kind whose whole accelerator memory holds the model, cheapest first."""
    rows = []
    for row in INSTANCE_TYPES.values():
        if row.accelerator != accelerator or row.family.startswith("trn"):
            continue
        f = fit(row, params_billion, dtype, row.accelerator_count, utilization)
        if f.needed_gib <= f.available_gib:
            rows.append(row)
    return [r.name for r in sorted(rows, key=lambda r: (r.price_per_hour, r.name))]


def check_sizing(*, where: str, instance: InstanceType, params_billion: float, dtype: str, tp: int,
                 memory_utilization: float = 0.9) -> Fit:
    """Raise ValueError naming the field, the figures and a type that fits; return the fit otherwise."""
    if instance.accelerator == "none":
        raise ValueError(f"{where}.instance_type: {instance.name} has no GPU or NeuronCore; an LLM container needs one "
                         f"(e.g. {', '.join(types_that_fit(params_billion, dtype, 'nvidia')[:2])})")
    if tp < 1 or instance.accelerator_count % tp:
        divisors = [d for d in range(1, instance.accelerator_count + 1) if instance.accelerator_count % d == 0]
        raise ValueError(f"{where}.tensor_parallel_degree: {tp} does not divide the {instance.accelerator_count} "
                         f"{'NeuronCores' if instance.accelerator == 'neuron' else 'GPUs'} of {instance.name}; "
                         f"allowed: {', '.join(map(str, divisors))}")
    f = fit(instance, params_billion, dtype, tp, memory_utilization)
    if f.needed_gib > f.available_gib:
        fits = types_that_fit(params_billion, dtype, instance.accelerator, memory_utilization)
        hint = f"; a type that fits: {fits[0]}" if fits else "; no listed type fits: quantize (fp8, awq) or pick a smaller model"
        raise ValueError(
            f"{where}: {params_billion:g}B parameters in {dtype} need {f.weights_gib:.1f} GiB of weights + "
            f"{f.reserve_gib:.1f} GiB KV-cache reserve = {f.needed_gib:.1f} GiB, but {tp} x "
            f"{instance.accelerator_memory_gib:g} GiB {instance.accelerator_name} x {memory_utilization:g} utilization "
            f"on {instance.name} = {f.available_gib:.1f} GiB{hint}")
    return f


# -- images ---------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def image_table() -> dict:
    return json.loads(IMAGE_TABLE_PATH.read_text(encoding="utf-8"))


def image(container: str) -> dict:
    return image_table()["families"][container]

