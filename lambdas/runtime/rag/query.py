"""Query: validate -> embed -> top-k with filters -> render the prompt -> LLM (or extractive) -> cited answer."""

from __future__ import annotations

import inspect
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lambdas.runtime.experiments.assignment import Experiment
from lambdas.runtime.rag.retry import ModelStarting
from lambdas.runtime.rag.embedders import Embedder
from lambdas.runtime.rag.llm import LanguageModel, extractive_answer
from lambdas.runtime.rag.model import Hit
from lambdas.runtime.rag.prompting import DEFAULT_PROMPT_ID, PromptSource, format_context
from lambdas.runtime.rag.store import VectorStore, check_filters

DEFAULT_TOP_K = 5
MAX_TOP_K = 50
DEFAULT_MAX_QUESTION_CHARS = 2000
NO_LLM_NOTE = "No LLM was called: the answer is extracted from the retrieved passages."
REQUEST_FIELDS = frozenset({"question", "top_k", "filters", "session_id"})
# A caller's session or user id: it makes experiment assignment sticky (the same id, the same arm).
MAX_SESSION_ID_CHARS = 256
_SESSION_ID = re.compile(r"[\x21-\x7e]{1,%d}" % MAX_SESSION_ID_CHARS)
# Longest string filter value: S3 keys are at most 1024 bytes, and no metadata value is longer.
MAX_FILTER_VALUE_CHARS = 1024
_INT64 = 2**63
# Unicode categories that print nothing: format (zero-width space, joiners, BOM), controls, separators.
_INVISIBLE = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp"})


class InvalidQuery(ValueError):
    """The request is malformed; the message names the field and the problem (HTTP 400)."""


class DependencyFailed(Exception):
    """A dependency (embedding model, vector store, prompt catalog, language model) failed.

    ``status`` is 502 (it answered with an error), 503 (unreachable, not ready or throttled) or
    504 (it timed out); ``public_detail`` is safe to show a caller, the cause stays in the logs.
    """

    def __init__(self, dependency: str, status: int, public_detail: str = "", retry_after: int = 5) -> None:
        super().__init__(f"{dependency} failed ({status})")
        self.dependency = dependency
        self.status = status
        self.public_detail = public_detail
        self.retry_after = retry_after


def _failed(dependency: str, exc: Exception) -> DependencyFailed:
    from lambdas.runtime.rag.retry import UpstreamThrottled, failure_status
    from lambdas.runtime.rag.store import StoreUnavailable

    if isinstance(exc, StoreUnavailable):  # its message names the wait, no host or credentials
        return DependencyFailed(dependency, 503, str(exc), retry_after=10)
    # A throttling report names the service and the attempts: no internals, and useful to the caller.
    detail = str(exc) if isinstance(exc, UpstreamThrottled) else ""
    return DependencyFailed(dependency, failure_status(exc), detail)


@dataclass(frozen=True)
class QueryRequest:
    question: str
    top_k: int = DEFAULT_TOP_K
    filters: dict[str, str | int | float | bool] = field(default_factory=dict)
    session_id: str | None = None


def _check_text(value: str, what: str) -> None:
    """Text that a tokenizer, a database and a JSON encoder all take: valid Unicode, no NUL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidQuery(f"{what} is not valid Unicode: a lone surrogate at character {exc.start}") from None
    if "\x00" in value:
        raise InvalidQuery(f"{what} must not contain NUL characters")


def _check_filter_values(filters: Mapping[Any, Any]) -> None:
    import math

    for name, value in filters.items():
        if isinstance(value, str):
            _check_text(value, f"filter {name!r}")
            if len(value) > MAX_FILTER_VALUE_CHARS:
                raise InvalidQuery(f"filter {name!r} is {len(value)} characters; the limit is {MAX_FILTER_VALUE_CHARS}")
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidQuery(f"filter {name!r} must be a finite number, got {value!r}")
        elif isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
            raise InvalidQuery(f"filter {name!r} is outside the 64-bit integer range")


def parse_request(
    payload: Any,
    *,
    filterable: frozenset[str],
    max_question_chars: int = DEFAULT_MAX_QUESTION_CHARS,
    default_top_k: int = DEFAULT_TOP_K,
) -> QueryRequest:
    if not isinstance(payload, Mapping):
        raise InvalidQuery('the body must be a JSON object like {"question": "..."}')
    unknown = sorted(str(name) for name in payload if name not in REQUEST_FIELDS)
    if unknown:
        raise InvalidQuery(f"unknown request field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(REQUEST_FIELDS))}")
    question = payload.get("question")
    if not isinstance(question, str):
        raise InvalidQuery("question is required and must be a string")
    question = question.strip()
    if not question:
        raise InvalidQuery("question must not be empty")
    if len(question) > max_question_chars:
        raise InvalidQuery(f"question is {len(question)} characters; the limit is {max_question_chars}")
    _check_text(question, "question")
    import unicodedata

    if all(unicodedata.category(c) in _INVISIBLE for c in question):
        raise InvalidQuery("question has no visible characters (only zero-width or control characters)")
    top_k = payload.get("top_k", default_top_k)
    if top_k is None:
        top_k = default_top_k
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise InvalidQuery(f"top_k must be an integer from 1 to {MAX_TOP_K}, got {top_k!r}")
    filters = payload.get("filters") or {}
    if not isinstance(filters, Mapping):
        raise InvalidQuery("filters must be an object mapping field names to values")
    try:
        checked = check_filters(filters, filterable)
    except ValueError as exc:
        raise InvalidQuery(str(exc)) from None
    _check_filter_values(checked)  # after the names and types: an unknown field is named first
    session_id = payload.get("session_id")
    if session_id is not None and (not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id)):
        raise InvalidQuery(f"session_id must be 1-{MAX_SESSION_ID_CHARS} visible ASCII characters (no spaces), "
                           f"got {session_id!r:.60}")
    return QueryRequest(question=question, top_k=top_k, filters=checked, session_id=session_id)


@dataclass(frozen=True)
class Citation:
    n: int  # the [n] the answer cites
    source: str
    page: int | None
    chunk_index: int | None
    chunk_id: str
    score: float
    start_offset: int | None = None
    end_offset: int | None = None
    text: str = ""


@dataclass(frozen=True)
class Answer:
    answer: str
    citations: list[Citation]
    prompt_id: str
    prompt_version: int
    llm_called: bool
    prompt_hash: str | None = None  # the rendered version's content hash: which exact prompt answered
    model: str | None = None
    note: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    # Which arm answered (docs/experiments.md): the first experiment's name and arm, the model
    # variant and the embedding model that served, and every running experiment's arm by name.
    experiment: str | None = None
    arm: str | None = None
    variant: str | None = None
    embedding_model: str | None = None
    assignments: dict[str, str] = field(default_factory=dict)

    @property
    def top_score(self) -> float | None:
        return self.citations[0].score if self.citations else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _source(metadata: Mapping[str, Any]) -> str:
    key = metadata.get("source_key") or ""
    bucket = metadata.get("source_bucket")
    return f"s3://{bucket}/{key}" if bucket else key


def citations_for(hits: list[Hit]) -> list[Citation]:
    return [
        Citation(
            n=n,
            source=_source(hit.chunk.metadata),
            page=hit.chunk.metadata.get("page"),
            chunk_index=hit.chunk.metadata.get("chunk_index"),
            chunk_id=hit.chunk.chunk_id,
            score=round(hit.score, 6),
            start_offset=hit.chunk.metadata.get("start_offset"),
            end_offset=hit.chunk.metadata.get("end_offset"),
            text=hit.chunk.text,
        )
        for n, hit in enumerate(hits, 1)
    ]


@dataclass
class _Route:
    """What serves one request: its store and embedder (an embedding arm's), the model variant, the arms."""

    store: VectorStore
    embedder: Embedder | None
    embedding_model: str | None
    target_variant: str | None = None
    assignments: dict[str, str] = field(default_factory=dict)


class QueryPipeline:
    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder | None,
        prompt_source: PromptSource,
        llm: LanguageModel | None = None,
        *,
        prompt_id: str = DEFAULT_PROMPT_ID,
        prompt_alias: str = "prod",
        experiments: Sequence[Experiment] = (),
        embedding_arms: Mapping[str, tuple[VectorStore, Embedder]] | None = None,
    ) -> None:
        if embedder is None and not hasattr(store, "search_text"):
            raise ValueError("an embedder is needed unless the store ranks text itself (search_text)")
        self.store = store
        self.embedder = embedder
        self.prompt_source = prompt_source
        self.llm = llm
        self.prompt_id = prompt_id
        self.prompt_alias = prompt_alias
        self.experiments = tuple(experiments)
        self.embedding_arms = dict(embedding_arms or {})
        for exp in self.experiments:
            if exp.kind == "embedding-ab" and exp.winner is None:
                missing = [a.name for a in exp.arms if a.name not in self.embedding_arms]
                if missing:
                    raise ValueError(f"experiment {exp.name}: no store and embedder for arm(s) {', '.join(missing)}")
        try:
            self._sticky_prompts = "unit" in inspect.signature(prompt_source.render).parameters
        except (TypeError, ValueError):
            self._sticky_prompts = False

    def route(self, unit: str) -> _Route:
        """The arms ``unit`` is assigned to, and the store, embedder and variant that follow from them."""
        route = _Route(self.store, self.embedder, getattr(self.embedder, "model_name", None))
        for exp in self.experiments:
            if exp.kind == "prompt-ab":
                continue  # the catalog alias splits prompts (same hash, see render); the arm is known after rendering
            arm = exp.assign(unit)
            route.assignments[exp.name] = arm.name
            if exp.kind == "embedding-ab":
                route.embedding_model = arm.model
                if exp.winner is None:
                    route.store, route.embedder = self.embedding_arms[arm.name]
            elif exp.kind == "model-ab":
                route.target_variant = arm.variant
        return route

    def _prompt_arms(self, route: _Route, version: int) -> None:
        for exp in self.experiments:
            if exp.kind == "prompt-ab":
                arm = next((a for a in exp.arms if a.version == version), None)
                if arm is not None:
                    route.assignments[exp.name] = arm.name

    def answer(self, request: QueryRequest, *, unit: str | None = None) -> Answer:
        """``unit`` (the request id) assigns experiment arms when the request names no ``session_id``."""
        from lambdas.runtime.prompt_catalog.errors import PromptCatalogError

        unit = request.session_id or unit or uuid.uuid4().hex
        route = self.route(unit)
        store, embedder = route.store, route.embedder
        timings: dict[str, float] = {}
        search_text = getattr(store, "search_text", None)
        stage = "vector store"
        try:
            if search_text is not None:  # a retriever that ranks text itself (Kendra): nothing to embed
                started = time.perf_counter()
                hits = search_text(request.question, request.top_k, request.filters or None)
            else:
                stage = "embedding model"
                started = time.perf_counter()
                vector = embedder.embed_query(request.question)
                timings["embedding"] = (time.perf_counter() - started) * 1000
                stage = "vector store"
                started = time.perf_counter()
                hits = store.search(vector, request.top_k, request.filters or None)
        except ValueError as exc:  # e.g. a filter or question length this backend cannot take
            raise InvalidQuery(str(exc)) from None
        except Exception as exc:
            raise _failed(stage, exc) from exc
        timings["retrieval"] = (time.perf_counter() - started) * 1000
        try:
            prompt = self.prompt_source.render(
                self.prompt_id, {"question": request.question, "context": format_context(hits)}, alias=self.prompt_alias,
                **({"unit": unit} if self._sticky_prompts else {}),
            )
        except (PromptCatalogError, ValueError):
            raise  # the prompt itself is missing or wrong: a deployment problem, answered as such
        except Exception as exc:
            raise _failed("prompt catalog", exc) from exc
        self._prompt_arms(route, prompt.version)
        first = next(iter(route.assignments.items()), (None, None))
        served = {"experiment": first[0], "arm": first[1], "embedding_model": route.embedding_model,
                  "assignments": dict(route.assignments), "variant": route.target_variant}
        citations = citations_for(hits)
        if not hits:
            return Answer("No indexed passage matches the question.", [], prompt.prompt_id, prompt.version,
                          llm_called=False, prompt_hash=prompt.content_hash, note="Nothing was retrieved, so no LLM was called.",
                          timings_ms=timings, **served)
        if self.llm is None:
            return Answer(extractive_answer(request.question, hits), citations, prompt.prompt_id, prompt.version,
                          llm_called=False, prompt_hash=prompt.content_hash, note=NO_LLM_NOTE, timings_ms=timings, **served)
        from lambdas.runtime.rag.llm import PromptIncompatible

        started = time.perf_counter()
        try:
            if route.target_variant:
                generation = self.llm.generate(prompt, target_variant=route.target_variant)
            else:
                generation = self.llm.generate(prompt)
        except PromptIncompatible:
            raise
        except ModelStarting:
            raise  # a scaled-to-zero model: the handler answers 503 "model is starting"
        except Exception as exc:
            raise _failed("language model", exc) from exc
        timings["generation"] = (time.perf_counter() - started) * 1000
        served["variant"] = getattr(generation, "variant", None) or route.target_variant
        return Answer(
            generation.text,
            citations,
            prompt.prompt_id,
            prompt.version,
            llm_called=True,
            prompt_hash=prompt.content_hash,
            model=generation.model,
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            timings_ms=timings,
            **served,
        )
