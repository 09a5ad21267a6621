"""Lines of interaction logs and SageMaker data-capture files → interaction records.

A line is either an interaction record (``{prompt, response, ...}``, what the RAG query and
``llmops local ask`` write) or a data-capture record
(``{"captureData": {"endpointInput": {...}, "endpointOutput": {...}}, "eventMetadata": {...}}``)
whose payloads are JSON or base64 (``encoding``) in one of the request shapes the platform
serves: TGI ``{inputs, parameters}``, LMI ``{inputs}`` / ``{prompt}``, or chat ``{messages}``.
Nothing is dropped silently: each unusable line comes back with its number and the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lambdas.runtime.monitoring.records import Interaction, RecordError, validate_record


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class Parsed:
    line: int
    record: Interaction
    record_id: str | None = None


def _payload(part: Any, side: str) -> Any:
    if not isinstance(part, dict) or "data" not in part:
        raise RecordError(f"captureData.{side} has no 'data'")
    data, encoding = part["data"], str(part.get("encoding", "JSON")).upper()
    if not isinstance(data, str):
        raise RecordError(f"captureData.{side}.data must be a string")
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise RecordError(f"captureData.{side}.data is not base64 of UTF-8 text ({exc})") from None
    elif encoding not in ("JSON", "CSV"):
        raise RecordError(f"captureData.{side}.encoding must be JSON or BASE64, got {part.get('encoding')!r}")
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise RecordError(f"captureData.{side}.data is not JSON ({exc.msg} at char {exc.pos})") from None


def _content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI-style content parts
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    raise RecordError("a message 'content' must be a string or a list of parts")


def request_prompt(request: Any) -> tuple[str, str | None]:
    """(prompt, question): the text sent to the model and, for chat requests, the last user turn."""
    if not isinstance(request, dict):
        raise RecordError("endpointInput must be a JSON object")
    if "messages" in request:
        messages = request["messages"]
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise RecordError("endpointInput 'messages' must be a non-empty list of objects")
        prompt = "\n".join(f"{m.get('role', 'user')}: {_content(m.get('content', ''))}" for m in messages)
        users = [_content(m.get("content", "")) for m in messages if m.get("role", "user") == "user"]
        return prompt, (users[-1] if users else None)
    for key in ("inputs", "prompt"):
        if key in request:
            value = request[key]
            if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
                value = value[0]
            if not isinstance(value, str):
                raise RecordError(f"endpointInput '{key}' must be a string (one prompt per request)")
            return value, None
    raise RecordError("endpointInput has none of 'inputs' (TGI/LMI), 'prompt' (LMI) or 'messages' (chat)")


def response_text(response: Any) -> str:
    """The generated text of a TGI (list or object), LMI or chat-completions answer."""
    if isinstance(response, list) and len(response) == 1:
        response = response[0]
    if isinstance(response, dict):
        if isinstance(response.get("generated_text"), str):
            return response["generated_text"]
        choices = response.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            choice = choices[0]
            if isinstance(choice.get("message"), dict):
                return _content(choice["message"].get("content") or "")
            if isinstance(choice.get("text"), str):
                return choice["text"]
        if isinstance(response.get("outputs"), list) and response["outputs"] and isinstance(response["outputs"][0], str):
            return response["outputs"][0]
    raise RecordError("endpointOutput has no 'generated_text' (TGI/LMI) or 'choices' (chat)")


def _token_usage(response: Any) -> dict[str, int]:
    usage = response.get("usage") if isinstance(response, dict) else None
    if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int) and isinstance(usage.get("completion_tokens"), int):
        return {"prompt_tokens": usage["prompt_tokens"], "response_tokens": usage["completion_tokens"]}
    return {}


def capture_record(obj: dict) -> tuple[Interaction, str | None]:
    data = obj["captureData"]
    if not isinstance(data, dict):
        raise RecordError("captureData must be an object")
    request = _payload(data.get("endpointInput"), "endpointInput")
    response = _payload(data.get("endpointOutput"), "endpointOutput")
    prompt, question = request_prompt(request)
    event = obj.get("eventMetadata") if isinstance(obj.get("eventMetadata"), dict) else {}
    metadata = {"source": "capture", **_token_usage(response)}
    for key in ("eventId", "inferenceTime", "inferenceId"):
        if key in event:
            metadata[key] = event[key]
    record = Interaction(prompt=prompt, response=response_text(response), question=question, metadata=metadata)
    return record, event.get("eventId")


def parse_line(text: str) -> tuple[Interaction, str | None]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not JSON ({exc.msg} at char {exc.pos})") from None
    if isinstance(obj, dict) and "captureData" in obj:
        return capture_record(obj)
    record = validate_record(obj)
    record_id = record.metadata.get("id") if isinstance(record.metadata.get("id"), str) else None
    return record, record_id


def parse_lines(lines: Iterable[str | bytes]) -> Iterator[Parsed | Rejected]:
    """One Parsed or Rejected per non-blank line, numbered from 1, in order (a stream: S3 bodies fit)."""
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Rejected(number, f"not UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})")
                continue
        if not raw.strip():
            continue
        try:
            record, record_id = parse_line(raw)
        except RecordError as exc:
            yield Rejected(number, str(exc))
            continue
        yield Parsed(number, record, record_id)
