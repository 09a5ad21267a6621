"""The interaction record every metric reads, and its validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class RecordError(ValueError):
    """A line or object that is not a usable interaction record; the message names the problem."""


@dataclass(frozen=True)
class Interaction:
    prompt: str
    response: str
    contexts: tuple[str, ...] | None = None
    question: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def query(self) -> str:
        """What the response should answer: the user's question when the prompt is a filled template."""
        return self.question if self.question else self.prompt


def _text(obj: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise RecordError(f"missing '{key}'")
        return None
    if not isinstance(value, str):
        raise RecordError(f"'{key}' must be a string, got {type(value).__name__}")
    return value


def validate_record(obj: Any) -> Interaction:
    """``{prompt, response, contexts?, question?, metadata?}`` → Interaction, or RecordError naming the field."""
    if not isinstance(obj, Mapping):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    prompt = _text(obj, "prompt", required=True)
    response = _text(obj, "response", required=True)
    question = _text(obj, "question", required=False)
    contexts = obj.get("contexts")
    if contexts is not None:
        if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
            raise RecordError("'contexts' must be a list of strings")
        contexts = tuple(contexts)
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise RecordError(f"'metadata' must be an object, got {type(metadata).__name__}")
    return Interaction(prompt=prompt, response=response, contexts=contexts, question=question, metadata=metadata)


def record_from_answer(question: str, answer: Any, *, record_id: str, time: str) -> dict[str, Any]:
    """The interaction record of one RAG answer (``lambdas.runtime.rag.query.Answer``, read by attribute).

    The prompt is the question: the rendered template is not kept on the answer, and the metrics
    compare the question with the response anyway.
    """
    timings = getattr(answer, "timings_ms", None) or {}
    metadata: dict[str, Any] = {
        "id": record_id, "time": time, "source": "rag", "prompt_id": answer.prompt_id,
        "prompt_version": answer.prompt_version, "model": answer.model, "llm_called": answer.llm_called,
        "scores": [c.score for c in answer.citations],
    }
    # Which experiment arm answered (docs/experiments.md): the judge splits records by these.
    for key in ("experiment", "arm", "variant", "embedding_model"):
        value = getattr(answer, key, None)
        if value is not None:
            metadata[key] = value
    if getattr(answer, "assignments", None):
        metadata["assignments"] = dict(answer.assignments)
    for key, value in (("prompt_tokens", answer.prompt_tokens), ("response_tokens", answer.completion_tokens),
                       ("embedding_ms", timings.get("embedding")), ("retrieval_ms", timings.get("retrieval")),
                       ("generation_ms", timings.get("generation"))):
        if value is not None:
            metadata[key] = value
    return {"prompt": question, "question": question, "response": answer.answer,
            "contexts": [c.text for c in answer.citations], "metadata": metadata}
