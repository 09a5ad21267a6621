"""Generation: a SageMaker endpoint serving TGI or DJL-LMI, a Bedrock model through Converse, or no LLM."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from lambdas.runtime.rag.model import Hit

if TYPE_CHECKING:  # the prompt catalog's model module builds pydantic models on import
    from lambdas.runtime.prompt_catalog.model import RenderedPrompt
from lambdas.runtime.rag.retry import DEFAULT_ATTEMPTS, call_with_backoff, client_config


@dataclass(frozen=True)
class Generation:
    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class LlmError(Exception):
    """The model answered, but not with something this client understands."""


class LanguageModel(Protocol):
    name: str

    def generate(self, prompt: RenderedPrompt) -> Generation: ...


def _parameters(prompt: RenderedPrompt) -> tuple[float, int, list[str]]:
    params = prompt.model_parameters or {}
    stop = params.get("stop") or []
    return float(params.get("temperature", 0.1)), int(params.get("max_tokens", 512)), list(stop)


class SageMakerLlm:
    """A SageMaker real-time endpoint running Hugging Face TGI or DJL LMI (``inputs`` + ``parameters``)."""

    def __init__(self, endpoint_name: str, *, container: str = "tgi", client: Any = None,
                 sleep: Callable[[float], None] | None = None, attempts: int = DEFAULT_ATTEMPTS) -> None:
        if container not in ("tgi", "djl-lmi"):
            raise ValueError(f"LLM_CONTAINER must be 'tgi' or 'djl-lmi', got {container!r}")
        import boto3

        self.endpoint_name = endpoint_name
        self.container = container
        self.name = f"sagemaker:{endpoint_name}"
        self._client = client or boto3.client("sagemaker-runtime", config=client_config())
        self._backoff = {"attempts": attempts, **({"sleep": sleep} if sleep else {})}

    def payload(self, prompt: RenderedPrompt) -> dict[str, Any]:
        temperature, max_tokens, stop = _parameters(prompt)
        parameters: dict[str, Any] = {"max_new_tokens": max_tokens, "details": True, "decoder_input_details": True}
        # Both containers reject temperature 0: greedy decoding is asked for with do_sample=false instead.
        if temperature > 0:
            parameters.update(temperature=temperature, do_sample=True)
        else:
            parameters["do_sample"] = False
        if self.container == "tgi":
            parameters["return_full_text"] = False
            if stop:
                parameters["stop"] = stop
        elif stop:
            parameters["stop_sequences"] = stop
        return {"inputs": prompt.text, "parameters": parameters}

    def generate(self, prompt: RenderedPrompt) -> Generation:
        body = json.dumps(self.payload(prompt))
        response = call_with_backoff(
            lambda: self._client.invoke_endpoint(
                EndpointName=self.endpoint_name, ContentType="application/json", Accept="application/json", Body=body
            ),
            service=f"SageMaker endpoint {self.endpoint_name}",
            **self._backoff,
        )
        payload = json.loads(response["Body"].read())
        if isinstance(payload, list) and payload:
            payload = payload[0]  # TGI answers a list with one generation
        if not isinstance(payload, dict) or not isinstance(payload.get("generated_text"), str):
            raise LlmError(f"SageMaker endpoint {self.endpoint_name} returned no 'generated_text'")
        details = payload.get("details") or {}
        prefill = details.get("prefill")
        return Generation(
            text=payload["generated_text"].strip(),
            model=self.name,
            prompt_tokens=len(prefill) if isinstance(prefill, list) else None,
            completion_tokens=details.get("generated_tokens"),
        )


class BedrockConverseLlm:
    """Any Bedrock text model through the model-agnostic Converse API."""

    def __init__(self, model_id: str, *, client: Any = None, sleep: Callable[[float], None] | None = None,
                 attempts: int = DEFAULT_ATTEMPTS) -> None:
        import boto3

        self.model_id = model_id
        self.name = f"bedrock:{model_id}"
        self._client = client or boto3.client("bedrock-runtime", config=client_config())
        self._backoff = {"attempts": attempts, **({"sleep": sleep} if sleep else {})}

    def request(self, prompt: RenderedPrompt) -> dict[str, Any]:
        temperature, max_tokens, stop = _parameters(prompt)
        config: dict[str, Any] = {"maxTokens": max_tokens, "temperature": temperature}
        if stop:
            config["stopSequences"] = stop
        request: dict[str, Any] = {"modelId": self.model_id, "inferenceConfig": config}
        chat = [m for m in getattr(prompt, "messages", ()) if m.get("role") in ("system", "user", "assistant")]
        if chat:  # a chat template from the catalog keeps its roles
            system = [{"text": m["content"]} for m in chat if m["role"] == "system"]
            if system:
                request["system"] = system
            request["messages"] = [
                {"role": m["role"], "content": [{"text": m["content"]}]} for m in chat if m["role"] != "system"
            ]
        else:
            request["messages"] = [{"role": "user", "content": [{"text": prompt.text}]}]
        return request

    def generate(self, prompt: RenderedPrompt) -> Generation:
        request = self.request(prompt)
        response = call_with_backoff(lambda: self._client.converse(**request),
                                     service=f"Bedrock model {self.model_id}", **self._backoff)
        content = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(block.get("text", "") for block in content if isinstance(block, dict))
        usage = response.get("usage", {})
        return Generation(text=text.strip(), model=self.name, prompt_tokens=usage.get("inputTokens"),
                          completion_tokens=usage.get("outputTokens"))


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+")


def extractive_answer(question: str, hits: Sequence[Hit], max_sentences: int = 2) -> str:
    """No LLM: the sentences of the top passages that share the most words with the question, cited [n]."""
    if not hits:
        return ""
    question_words = set(_WORD.findall(question.lower()))
    scored: list[tuple[float, int, int, str]] = []
    for n, hit in enumerate(hits, 1):
        for position, sentence in enumerate(_SENTENCE_END.split(hit.chunk.text)):
            sentence = " ".join(sentence.lstrip("#>*- ").split())
            words = set(_WORD.findall(sentence.lower()))
            if not words:
                continue
            overlap = len(question_words & words) / len(question_words or words)
            # Ties go to the better-ranked passage, then to the earlier sentence.
            scored.append((overlap + hit.score * 0.1, -n, -position, f"{sentence.strip()} [{n}]"))
    best = sorted(scored, reverse=True)[:max_sentences]
    return " ".join(sentence for *_, sentence in best)


def language_model_from_env(environ: Mapping[str, str] = os.environ) -> LanguageModel | None:
    """``LLM_PROVIDER``: ``sagemaker`` (``LLM_ENDPOINT_NAME``, ``LLM_CONTAINER``), ``bedrock`` (``LLM_MODEL_ID``), or unset/``none``."""
    provider = environ.get("LLM_PROVIDER", "")
    if provider in ("", "none"):
        return None
    if provider == "sagemaker":
        endpoint = environ.get("LLM_ENDPOINT_NAME")
        if not endpoint:
            raise ValueError("LLM_ENDPOINT_NAME must be set when LLM_PROVIDER=sagemaker")
        return SageMakerLlm(endpoint, container=environ.get("LLM_CONTAINER") or "tgi")
    if provider == "bedrock":
        model_id = environ.get("LLM_MODEL_ID")
        if not model_id:
            raise ValueError("LLM_MODEL_ID must be set when LLM_PROVIDER=bedrock")
        return BedrockConverseLlm(model_id)
    raise ValueError(f"LLM_PROVIDER={provider!r} is not supported; use sagemaker, bedrock or none")
