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


class PromptIncompatible(ValueError):
    """The rendered prompt asks for something the target model cannot take (e.g. too many stop sequences)."""


# TGI's launcher default for MAX_STOP_SEQUENCES; vLLM (DJL-LMI) and Converse set no lower limit of their own.
TGI_DEFAULT_MAX_STOP_SEQUENCES = 4
CONVERSE_MAX_STOP_SEQUENCES = 2500  # the API shape's list limit; some models accept fewer
# LangChain message types (what the catalog renderer returns) -> the chat APIs' role names.
CHAT_ROLES = {"system": "system", "human": "user", "user": "user", "ai": "assistant", "assistant": "assistant"}


class LanguageModel(Protocol):
    name: str

    def generate(self, prompt: RenderedPrompt) -> Generation: ...


DEFAULT_TEMPERATURE = 0.1
DEFAULT_MAX_TOKENS = 512


def _parameters(prompt: RenderedPrompt, max_stop: int | None = None, target: str = "the model") -> tuple[float, int, list[str]]:
    """(temperature, max_tokens, stop); a version that leaves a parameter unset gets the default."""
    params = prompt.model_parameters or {}
    temperature = params.get("temperature")
    max_tokens = params.get("max_tokens")
    stop = list(params.get("stop") or [])
    if max_stop is not None and len(stop) > max_stop:
        raise PromptIncompatible(
            f"prompt {prompt.prompt_id} v{prompt.version} has {len(stop)} stop sequences; {target} accepts at most {max_stop}"
        )
    return (
        DEFAULT_TEMPERATURE if temperature is None else float(temperature),
        DEFAULT_MAX_TOKENS if max_tokens is None else int(max_tokens),
        stop,
    )


def chat_messages(prompt: RenderedPrompt) -> list[dict[str, str]]:
    """The prompt's chat messages with the chat APIs' roles (system/user/assistant); [] for a text prompt."""
    return [{"role": CHAT_ROLES[m["role"]], "content": m["content"]}
            for m in getattr(prompt, "messages", ()) or () if m.get("role") in CHAT_ROLES]


class SageMakerLlm:
    """A SageMaker real-time endpoint running Hugging Face TGI or DJL LMI.

    Text prompts go as ``inputs`` + ``parameters``; chat prompts go as ``messages`` (TGI's Messages
    API, LMI's chat completions schema), so the container applies the model's own chat template.
    """

    def __init__(self, endpoint_name: str, *, container: str = "tgi", client: Any = None,
                 sleep: Callable[[float], None] | None = None, attempts: int = DEFAULT_ATTEMPTS,
                 max_stop_sequences: int | None = None,
                 inference_component: str | None = None, target_variant: str | None = None) -> None:
        if container not in ("tgi", "djl-lmi", "vllm"):
            raise ValueError(f"LLM_CONTAINER must be 'tgi', 'djl-lmi' or 'vllm', got {container!r}")
        import boto3

        self.endpoint_name = endpoint_name
        self.inference_component = inference_component  # endpoints with inference components need its name
        self.target_variant = target_variant  # one production variant (experiment replay, sticky A/B assignment)
        self.container = container
        if max_stop_sequences is None and container == "tgi":
            max_stop_sequences = TGI_DEFAULT_MAX_STOP_SEQUENCES
        self.max_stop_sequences = max_stop_sequences
        self.name = f"sagemaker:{endpoint_name}" + (f"/{target_variant}" if target_variant else "")
        self._client = client or boto3.client("sagemaker-runtime", config=client_config())
        self._backoff = {"attempts": attempts, **({"sleep": sleep} if sleep else {})}

    def payload(self, prompt: RenderedPrompt) -> dict[str, Any]:
        limit_name = "the TGI container (MAX_STOP_SEQUENCES)" if self.container == "tgi" else "the DJL-LMI container"
        temperature, max_tokens, stop = _parameters(prompt, self.max_stop_sequences, limit_name)
        messages = chat_messages(prompt)
        if messages:
            # OpenAI-style chat completion; temperature 0 means greedy decoding on both containers.
            chat: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature}
            top_p = (prompt.model_parameters or {}).get("top_p")
            if top_p is not None:
                chat["top_p"] = top_p
            if stop:
                chat["stop"] = stop
            return chat
        if self.container == "vllm":
            # The AWS vLLM container speaks the OpenAI completions schema for plain text prompts.
            completion: dict[str, Any] = {"prompt": prompt.text, "max_tokens": max_tokens, "temperature": temperature}
            if stop:
                completion["stop"] = stop
            return completion
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
        request = {"EndpointName": self.endpoint_name, "ContentType": "application/json", "Accept": "application/json",
                   "Body": body}
        if self.inference_component:
            request["InferenceComponentName"] = self.inference_component
        if self.target_variant:
            request["TargetVariant"] = self.target_variant
        response = call_with_backoff(
            lambda: self._client.invoke_endpoint(**request),
            service=f"SageMaker endpoint {self.endpoint_name}",
            **self._backoff,
        )
        payload = json.loads(response["Body"].read())
        if isinstance(payload, dict) and "choices" in payload:
            return self._chat_generation(payload)
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


    def _chat_generation(self, payload: dict[str, Any]) -> Generation:
        choices = payload.get("choices")
        first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        if isinstance(first.get("text"), str) and "message" not in first:  # an OpenAI completions answer (vLLM)
            usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
            return Generation(text=first["text"].strip(), model=self.name, prompt_tokens=usage.get("prompt_tokens"),
                              completion_tokens=usage.get("completion_tokens"))
        message = choices[0].get("message") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise LlmError(f"SageMaker endpoint {self.endpoint_name} returned a chat completion with no message content")
        usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
        return Generation(text=message["content"].strip(), model=self.name, prompt_tokens=usage.get("prompt_tokens"),
                          completion_tokens=usage.get("completion_tokens"))


class BedrockConverseLlm:
    """Any Bedrock text model through the model-agnostic Converse API."""

    def __init__(self, model_id: str, *, client: Any = None, sleep: Callable[[float], None] | None = None,
                 attempts: int = DEFAULT_ATTEMPTS, max_stop_sequences: int | None = None) -> None:
        import boto3

        self.model_id = model_id
        self.max_stop_sequences = CONVERSE_MAX_STOP_SEQUENCES if max_stop_sequences is None else max_stop_sequences
        self.name = f"bedrock:{model_id}"
        self._client = client or boto3.client("bedrock-runtime", config=client_config())
        self._backoff = {"attempts": attempts, **({"sleep": sleep} if sleep else {})}

    def request(self, prompt: RenderedPrompt) -> dict[str, Any]:
        temperature, max_tokens, stop = _parameters(prompt, self.max_stop_sequences, f"Bedrock model {self.model_id}")
        config: dict[str, Any] = {"maxTokens": max_tokens, "temperature": temperature}
        top_p = (prompt.model_parameters or {}).get("top_p")
        if top_p is not None:
            config["topP"] = top_p
        if stop:
            config["stopSequences"] = stop
        request: dict[str, Any] = {"modelId": self.model_id, "inferenceConfig": config}
        chat = chat_messages(prompt)
        system = [{"text": m["content"]} for m in chat if m["role"] == "system"]
        turns: list[dict[str, Any]] = []
        for m in (m for m in chat if m["role"] != "system"):
            # Converse wants alternating turns: consecutive messages of one role become one turn.
            if turns and turns[-1]["role"] == m["role"]:
                turns[-1]["content"].append({"text": m["content"]})
            else:
                turns.append({"role": m["role"], "content": [{"text": m["content"]}]})
        if not chat:
            turns = [{"role": "user", "content": [{"text": prompt.text}]}]
        elif not turns:  # instructions only: send them as the user's turn
            turns, system = [{"role": "user", "content": system}], []
        elif turns[0]["role"] != "user":
            raise PromptIncompatible(
                f"prompt {prompt.prompt_id} v{prompt.version}: Converse needs the first non-system message to be the user's"
            )
        if system:
            request["system"] = system
        request["messages"] = turns
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


def _limit(environ: Mapping[str, str]) -> int | None:
    raw = environ.get("LLM_MAX_STOP_SEQUENCES")
    if not raw:
        return None
    if not raw.isdigit():
        raise ValueError(f"LLM_MAX_STOP_SEQUENCES must be a whole number (the container's limit), got {raw!r}")
    return int(raw)


def language_model_from_env(environ: Mapping[str, str] = os.environ) -> LanguageModel | None:
    """``LLM_PROVIDER``: ``sagemaker`` (``LLM_ENDPOINT_NAME``, ``LLM_CONTAINER``, optional ``LLM_INFERENCE_COMPONENT``),
    ``bedrock`` (``LLM_MODEL_ID``), or unset/``none``."""
    provider = environ.get("LLM_PROVIDER", "")
    if provider in ("", "none"):
        return None
    if provider == "sagemaker":
        endpoint = environ.get("LLM_ENDPOINT_NAME")
        if not endpoint:
            raise ValueError("LLM_ENDPOINT_NAME must be set when LLM_PROVIDER=sagemaker")
        return SageMakerLlm(endpoint, container=environ.get("LLM_CONTAINER") or "tgi",
                            max_stop_sequences=_limit(environ),
                            inference_component=environ.get("LLM_INFERENCE_COMPONENT") or None)
    if provider == "bedrock":
        model_id = environ.get("LLM_MODEL_ID")
        if not model_id:
            raise ValueError("LLM_MODEL_ID must be set when LLM_PROVIDER=bedrock")
        return BedrockConverseLlm(model_id, max_stop_sequences=_limit(environ))
    raise ValueError(f"LLM_PROVIDER={provider!r} is not supported; use sagemaker, bedrock or none")
