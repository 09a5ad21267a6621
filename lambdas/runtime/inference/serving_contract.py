"""The HTTP contract of a SageMaker LLM serving container (TGI, DJL-LMI): request parsing and answers.

Pure parsing and formatting, no model and no socket, so every rule is testable on its own:

- ``{"inputs": str, "parameters": {...}}``: text generation. TGI answers ``[{"generated_text": ...}]``
  (``return_full_text`` defaults to true on its ``/invocations`` route and the stop sequence stays in the
  text); DJL-LMI answers one object and leaves the stop sequence out. Both parameter spellings are taken:
  TGI's ``stop``, LMI's ``stop_sequences``.
- ``{"messages": [...], "max_tokens", "temperature", "stop", ...}``: chat completions (LMI's schema and
  TGI's messages API are the same OpenAI shape), answered with an OpenAI ``chat.completion`` object.

A bad body raises ``ContractError`` with a 4xx status and a reason naming the field; TGI's validation
statuses and wording are kept (422 with ``{"error", "error_type"}``).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

CONTAINERS = ("tgi", "djl-lmi")
ROLES = ("system", "user", "assistant")
MAX_STOP_SEQUENCES = 4  # TGI's MAX_STOP_SEQUENCES default
PAYLOAD_LIMIT = 2_000_000  # TGI's PAYLOAD_LIMIT default, in bytes

GENERATE_PARAMETERS = frozenset({
    "max_new_tokens", "temperature", "do_sample", "top_p", "top_k", "repetition_penalty", "stop",
    "stop_sequences", "seed", "details", "decoder_input_details", "return_full_text",
})
CHAT_FIELDS = frozenset({
    "messages", "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed", "n",
    "stream", "logprobs",
})


class ContractError(Exception):
    """A request the contract refuses: HTTP ``status`` and a reason for the JSON body."""

    def __init__(self, status: int, message: str, error_type: str = "validation") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type

    def body(self) -> dict[str, str]:
        return {"error": self.message, "error_type": self.error_type}


@dataclass(frozen=True)
class Limits:
    max_new_tokens: int = 1024
    default_new_tokens: int = 256
    max_stop_sequences: int = MAX_STOP_SEQUENCES
    payload_limit: int = PAYLOAD_LIMIT


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate, whichever shape it came in."""

    kind: Literal["generate", "chat"]
    prompt: str = ""
    messages: tuple[dict[str, str], ...] = ()
    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    details: bool = False
    decoder_input_details: bool = False
    return_full_text: bool = False
    model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Generated(Protocol):
    """What the formatters read from a generation (``local_model.LocalGeneration`` has it)."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    stop_sequence: str | None
    seed: int | None
    tokens: tuple[Any, ...]
    prefill: tuple[Any, ...]


def _invalid(message: str) -> ContractError:
    return ContractError(422, message)


def _type_name(value: Any) -> str:
    return "null" if value is None else {bool: "boolean", int: "integer", float: "number", str: "string",
                                         list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _invalid(f"`{name}` must be a boolean, got {_type_name(value)}")
    return value


def _int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"`{name}` must be an integer, got {_type_name(value)}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise _invalid(f"`{name}` must be {bound}. Given: {value}")
    return value


def _float(name: str, value: Any, rule: str, ok: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _invalid(f"`{name}` must be a number, got {_type_name(value)}")
    if not math.isfinite(value) or not ok(float(value)):
        raise _invalid(f"`{name}` must be {rule}. Given: {value}")
    return float(value)


def _stop(name: str, value: Any, limits: Limits, *, single_string_ok: bool) -> tuple[str, ...]:
    if value is None:
        return ()
    if single_string_ok and isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _invalid(f"`{name}` must be a list of strings")
    if len(value) > limits.max_stop_sequences:
        raise _invalid(f"`{name}` supports up to {limits.max_stop_sequences} stop sequences. Given: {len(value)}")
    if any(s == "" for s in value):
        raise _invalid(f"`{name}` must not contain an empty string")
    return tuple(value)


def _unknown(where: str, given: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise _invalid(f"unknown {where}: {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def decode_body(body: bytes, limits: Limits = Limits()) -> dict[str, Any]:
    """The JSON object of a request body, or a 4xx ``ContractError``."""
    if len(body) > limits.payload_limit:
        raise ContractError(413, f"the body is {len(body)} bytes; the limit is {limits.payload_limit}",
                            "payload_too_large")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ContractError(400, f"the body is not JSON: {exc}", "invalid_json") from None
    if not isinstance(payload, dict):
        raise _invalid(f"the body must be a JSON object, got {_type_name(payload)}")
    return payload


def parse_invocation(body: bytes, limits: Limits = Limits(), *, container: str = "tgi") -> GenerationRequest:
    """A request body of ``/invocations`` as a ``GenerationRequest``; bad input raises ``ContractError`` (4xx)."""
    if container not in CONTAINERS:
        raise ValueError(f"container must be one of {', '.join(CONTAINERS)}, got {container!r}")
    payload = decode_body(body, limits)
    if "messages" in payload:
        return _parse_chat(payload, limits)
    if "inputs" in payload:
        return _parse_generate(payload, limits, container)
    raise _invalid("the body needs `inputs` (text generation) or `messages` (chat completions); "
                   f"got keys: {', '.join(sorted(payload)) or 'none'}")


def _parse_generate(payload: dict[str, Any], limits: Limits, container: str) -> GenerationRequest:
    _unknown("top-level field", payload, frozenset({"inputs", "parameters", "stream"}))
    if payload.get("stream") not in (None, False):
        raise _invalid("`stream` = true is not supported here; call without streaming")
    inputs = payload["inputs"]
    if not isinstance(inputs, str):
        raise _invalid(f"`inputs` must be a string, got {_type_name(inputs)}")
    if not inputs:
        raise _invalid("`inputs` cannot be empty")
    params = payload.get("parameters")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise _invalid(f"`parameters` must be an object, got {_type_name(params)}")
    _unknown("parameter", params, GENERATE_PARAMETERS)
    if "stop" in params and "stop_sequences" in params:
        raise _invalid("give `stop` (TGI) or `stop_sequences` (LMI), not both")
    stop_name = "stop_sequences" if "stop_sequences" in params else "stop"
    get = params.get
    return GenerationRequest(
        kind="generate",
        prompt=inputs,
        max_new_tokens=_int("max_new_tokens", get("max_new_tokens"), 1, limits.max_new_tokens)
        if get("max_new_tokens") is not None else limits.default_new_tokens,
        do_sample=_bool("do_sample", get("do_sample")) if get("do_sample") is not None else False,
        temperature=_float("temperature", get("temperature"), "strictly positive", lambda v: v > 0)
        if get("temperature") is not None else None,
        top_p=_float("top_p", get("top_p"), "> 0.0 and <= 1.0", lambda v: 0 < v <= 1)
        if get("top_p") is not None else None,
        top_k=_int("top_k", get("top_k"), 1) if get("top_k") is not None else None,
        repetition_penalty=_float("repetition_penalty", get("repetition_penalty"), "strictly positive",
                                  lambda v: v > 0) if get("repetition_penalty") is not None else None,
        stop=_stop(stop_name, get(stop_name), limits, single_string_ok=False),
        seed=_int("seed", get("seed"), 0, 2**63 - 1) if get("seed") is not None else None,
        details=_bool("details", get("details")) if get("details") is not None else False,
        decoder_input_details=_bool("decoder_input_details", get("decoder_input_details"))
        if get("decoder_input_details") is not None else False,
        # TGI's /invocations returns the prompt too unless told not to; LMI does not.
        return_full_text=_bool("return_full_text", get("return_full_text"))
        if get("return_full_text") is not None else container == "tgi",
    )


def _content(n: int, content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: only text parts for a text model
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else _type_name(part)
                raise _invalid(f"`messages[{n}].content` parts must be {{\"type\": \"text\", \"text\": str}}; "
                               f"got {kind!r} (this model reads text only)")
            texts.append(part["text"])
        return "".join(texts)
    raise _invalid(f"`messages[{n}].content` must be a string or a list of text parts, got {_type_name(content)}")


def _parse_chat(payload: dict[str, Any], limits: Limits) -> GenerationRequest:
    _unknown("field", payload, CHAT_FIELDS)
    messages = payload["messages"]
    if not isinstance(messages, list) or not messages:
        raise _invalid("`messages` must be a non-empty list of {role, content} objects")
    parsed = []
    for n, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid(f"`messages[{n}]` must be an object, got {_type_name(message)}")
        _unknown(f"field in messages[{n}]", message, frozenset({"role", "content", "name"}))
        role = message.get("role")
        if role not in ROLES:
            raise _invalid(f"`messages[{n}].role` must be one of {', '.join(ROLES)}; got {role!r}")
        parsed.append({"role": role, "content": _content(n, message.get("content"))})
    if not any(m["content"] for m in parsed):
        raise _invalid("`messages` cannot all be empty")
    for name, value in (("n", 1), ("stream", False), ("logprobs", False)):
        if payload.get(name) not in (None, value):
            raise _invalid(f"`{name}` must be {json.dumps(value)} here; got {json.dumps(payload.get(name))}")
    if "max_tokens" in payload and "max_completion_tokens" in payload:
        raise _invalid("give `max_tokens` or `max_completion_tokens`, not both")
    limit_name = "max_completion_tokens" if "max_completion_tokens" in payload else "max_tokens"
    model = payload.get("model")
    if model is not None and not isinstance(model, str):
        raise _invalid(f"`model` must be a string, got {_type_name(model)}")
    temperature = (_float("temperature", payload["temperature"], ">= 0.0 and <= 2.0", lambda v: 0 <= v <= 2)
                   if payload.get("temperature") is not None else None)
    return GenerationRequest(
        kind="chat",
        messages=tuple(parsed),
        max_new_tokens=_int(limit_name, payload[limit_name], 1, limits.max_new_tokens)
        if payload.get(limit_name) is not None else limits.default_new_tokens,
        # Greedy unless a positive temperature is asked for: local answers stay reproducible.
        do_sample=bool(temperature),
        temperature=temperature or None,
        top_p=_float("top_p", payload["top_p"], "> 0.0 and <= 1.0", lambda v: 0 < v <= 1)
        if payload.get("top_p") is not None else None,
        stop=_stop("stop", payload.get("stop"), limits, single_string_ok=True),
        seed=_int("seed", payload["seed"], 0, 2**63 - 1) if payload.get("seed") is not None else None,
        model=model,
    )


def _tokens(tokens: tuple[Any, ...], logprob_key: str) -> list[dict[str, Any]]:
    return [{"id": t.id, "text": t.text, logprob_key: t.logprob, "special": t.special} for t in tokens]


def generate_response(request: GenerationRequest, result: Generated, *, container: str = "tgi") -> Any:
    """The answer of the ``inputs`` shape: TGI's one-item list, or LMI's object."""
    text = result.text
    if result.stop_sequence and container == "tgi":
        text += result.stop_sequence  # TGI keeps the stop sequence in the text (LMI drops it)
    if request.return_full_text:
        text = request.prompt + text
    answer: dict[str, Any] = {"generated_text": text}
    if request.details or request.decoder_input_details:
        key = "logprob" if container == "tgi" else "log_prob"
        details: dict[str, Any] = {"finish_reason": result.finish_reason, "generated_tokens": result.completion_tokens}
        if container == "tgi":
            details.update(seed=result.seed, prefill=_tokens(result.prefill, key), tokens=_tokens(result.tokens, key))
        else:
            details.update(inputs=request.prompt, tokens=_tokens(result.tokens, key))
            if request.decoder_input_details:
                details["prefill"] = _tokens(result.prefill, key)
        answer["details"] = details
    return [answer] if container == "tgi" else answer


def chat_response(request: GenerationRequest, result: Generated, *, created: int | None = None) -> dict[str, Any]:
    """The OpenAI ``chat.completion`` object (the stop sequence is never part of the content)."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": request.model or result.model,
        "system_fingerprint": result.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": result.text},
            "logprobs": None,
            "finish_reason": "length" if result.finish_reason == "length" else "stop",
        }],
        "usage": {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                  "total_tokens": result.prompt_tokens + result.completion_tokens},
    }


def response_for(request: GenerationRequest, result: Generated, *, container: str = "tgi") -> Any:
    if request.kind == "chat":
        return chat_response(request, result)
    return generate_response(request, result, container=container)


def model_error(status: int, message: str, endpoint: str) -> dict[str, Any]:
    """What SageMaker Runtime answers (HTTP 424, ``ModelError``) when the container returns a 4xx/5xx."""
    return {
        "Message": f'Received {"client" if status < 500 else "server"} error ({status}) from primary with message "{message}". '
                   f"See the local serve log for more information.",
        "OriginalStatusCode": status,
        "OriginalMessage": message,
        "LogStreamArn": f"arn:aws:logs:local:000000000000:log-group:/aws/sagemaker/Endpoints/{endpoint}",
    }
