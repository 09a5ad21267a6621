"""Replay: send the same captured or curated requests to every arm, score the answers, and judge them like live traffic.

An arm is a way of turning a request into a rendered prompt (its prompt version) and a model that
answers it (``SageMakerLlm``: a deployed endpoint's variant through ``TargetVariant``, or the local
model server behind the same SageMaker Runtime API). Requests are JSON lines:

- ``{"variables": {"question": ..., "context": ...}}`` (or the variables at top level): rendered
  with each arm's prompt;
- ``{"prompt": "..."}``: sent as it is (model arms compare models on the same text);
- a data-capture line (``{"captureData": {"endpointInput": ...}}``): its prompt, as sent then.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

RESERVED = frozenset({"variables", "prompt", "captureData", "eventMetadata", "id", "contexts", "metadata"})


@dataclass(frozen=True)
class ReplayRequest:
    line: int
    variables: Mapping[str, Any] | None = None
    prompt: str | None = None
    question: str | None = None
    contexts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReplayArm:
    name: str
    llm: Any  # lambdas.runtime.rag.llm.SageMakerLlm (or anything with .generate(RenderedPrompt) -> Generation)
    render: Callable[[ReplayRequest], Any]  # -> RenderedPrompt
    metadata: Mapping[str, Any] | None = None  # recorded on every record of the arm (variant, prompt_version)


def parse_requests(lines: Iterable[str]) -> tuple[list[ReplayRequest], list[str]]:
    """Requests and the problems of the lines that are none (numbered from 1)."""
    from lambdas.runtime.monitoring.capture import request_prompt
    from lambdas.runtime.monitoring.records import RecordError

    requests, problems = [], []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"line {number}: not a JSON object")
            continue
        contexts = obj.get("contexts") if isinstance(obj.get("contexts"), list) else []
        contexts = tuple(c for c in contexts if isinstance(c, str))
        if isinstance(obj.get("captureData"), dict):
            data = obj["captureData"].get("endpointInput") or {}
            try:
                body = json.loads(data.get("data", "")) if isinstance(data, dict) and data.get("encoding") == "JSON" else None
                if body is None:
                    raise RecordError("endpointInput is not JSON-encoded data (capture with JsonContentTypes)")
                prompt, question = request_prompt(body)
            except (RecordError, json.JSONDecodeError) as exc:
                problems.append(f"line {number}: {exc}")
                continue
            requests.append(ReplayRequest(number, prompt=prompt, question=question, contexts=contexts))
        elif isinstance(obj.get("prompt"), str):
            requests.append(ReplayRequest(number, prompt=obj["prompt"], question=obj.get("question"), contexts=contexts))
        else:
            variables = obj.get("variables") if isinstance(obj.get("variables"), dict) else {
                k: v for k, v in obj.items() if k not in RESERVED}
            if not variables:
                problems.append(f"line {number}: no 'variables', 'prompt' or 'captureData'")
                continue
            question = variables.get("question") if isinstance(variables.get("question"), str) else None
            requests.append(ReplayRequest(number, variables=variables, question=question, contexts=contexts))
    return requests, problems


def replay(requests: Sequence[ReplayRequest], arms: Sequence[ReplayArm], *,
           clock: Callable[[], float] = time.perf_counter) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Interaction records per arm (the monitoring record format), and the requests an arm could not answer.

    Arms take turns per request, so a slow stretch of the machine or endpoint falls on every arm alike.
    """
    records: dict[str, list[dict[str, Any]]] = {arm.name: [] for arm in arms}
    problems: list[str] = []
    for request in requests:
        for arm in arms:
            try:
                prompt = arm.render(request)
                started = clock()
                generation = arm.llm.generate(prompt)
                latency_ms = (clock() - started) * 1000.0
            except Exception as exc:  # one failed request is a missing sample, named, not a failed replay
                problems.append(f"line {request.line}, arm {arm.name}: {type(exc).__name__}: {exc}")
                continue
            metadata = {"source": "replay", "line": request.line, "latency_ms": latency_ms, "model": generation.model,
                        "prompt_id": getattr(prompt, "prompt_id", None), "prompt_version": getattr(prompt, "version", None),
                        **(arm.metadata or {})}
            for key, value in (("prompt_tokens", generation.prompt_tokens), ("response_tokens", generation.completion_tokens)):
                if value is not None:
                    metadata[key] = value
            record = {"prompt": prompt.text, "response": generation.text, "metadata": metadata}
            if request.question:
                record["question"] = request.question
            if request.contexts:
                record["contexts"] = list(request.contexts)
            records[arm.name].append(record)
    return records, problems


def score(records: dict[str, list[dict[str, Any]]], metrics: Sequence[str], *, embedder: Any = None) -> dict[str, list[dict[str, Any]]]:
    """Each record with its monitoring metrics (and ``metadata.latency_ms``) under ``metrics``; the model only when a metric needs it.

    A record the monitoring library refuses (no prompt or response) raises ``RecordError`` naming the field.
    """
    from lambdas.runtime.monitoring import metrics as m
    from lambdas.runtime.monitoring.capture import Parsed
    from lambdas.runtime.monitoring.records import validate_record
    from lambdas.runtime.monitoring.scoring import score_records

    needs_model = any(metric.name in metrics and metric.cost in ("embedding", "batch") for metric in m.METRICS)
    out: dict[str, list[dict[str, Any]]] = {}
    for arm, items in records.items():
        parsed = [Parsed(i + 1, validate_record(r)) for i, r in enumerate(items)]
        rows = score_records(parsed, embedder=embedder, use_model=needs_model).rows if parsed else []
        scored = []
        for record, row in zip(items, rows):
            values = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                      and k not in ("line",)}
            latency = (record.get("metadata") or {}).get("latency_ms")
            if isinstance(latency, (int, float)) and not isinstance(latency, bool):
                values["latency_ms"] = float(latency)
            # Values the record already carries (from the scorer that wrote it) win over a rescore.
            scored.append({**record, "metrics": {**values, **(record.get("metrics") or {})}})
        out[arm] = scored
    return out
