"""Query: validate -> embed -> top-k with filters -> render the prompt -> LLM (or extractive) -> cited answer."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from lambdas.runtime.rag.embedders import Embedder
from lambdas.runtime.rag.llm import LanguageModel, extractive_answer
from lambdas.runtime.rag.model import Hit
from lambdas.runtime.rag.prompting import DEFAULT_PROMPT_ID, PromptSource, format_context
from lambdas.runtime.rag.store import VectorStore, check_filters

DEFAULT_TOP_K = 5
MAX_TOP_K = 50
DEFAULT_MAX_QUESTION_CHARS = 2000
NO_LLM_NOTE = "No LLM was called: the answer is extracted from the retrieved passages."
REQUEST_FIELDS = frozenset({"question", "top_k", "filters"})


class InvalidQuery(ValueError):
    """The request is malformed; the message names the field and the problem (HTTP 400)."""


@dataclass(frozen=True)
class QueryRequest:
    question: str
    top_k: int = DEFAULT_TOP_K
    filters: dict[str, str | int | float | bool] = field(default_factory=dict)


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
    if "\x00" in question:
        raise InvalidQuery("question must not contain NUL characters")
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
    return QueryRequest(question=question, top_k=top_k, filters=checked)


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
    model: str | None = None
    note: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

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
    ) -> None:
        if embedder is None and not hasattr(store, "search_text"):
            raise ValueError("an embedder is needed unless the store ranks text itself (search_text)")
        self.store = store
        self.embedder = embedder
        self.prompt_source = prompt_source
        self.llm = llm
        self.prompt_id = prompt_id
        self.prompt_alias = prompt_alias

    def answer(self, request: QueryRequest) -> Answer:
        timings: dict[str, float] = {}
        search_text = getattr(self.store, "search_text", None)
        try:
            if search_text is not None:  # a retriever that ranks text itself (Kendra): nothing to embed
                started = time.perf_counter()
                hits = search_text(request.question, request.top_k, request.filters or None)
            else:
                started = time.perf_counter()
                vector = self.embedder.embed_query(request.question)
                timings["embedding"] = (time.perf_counter() - started) * 1000
                started = time.perf_counter()
                hits = self.store.search(vector, request.top_k, request.filters or None)
        except ValueError as exc:  # e.g. a filter or question length this backend cannot take
            raise InvalidQuery(str(exc)) from None
        timings["retrieval"] = (time.perf_counter() - started) * 1000
        prompt = self.prompt_source.render(
            self.prompt_id, {"question": request.question, "context": format_context(hits)}, alias=self.prompt_alias
        )
        citations = citations_for(hits)
        if not hits:
            return Answer("No indexed passage matches the question.", [], prompt.prompt_id, prompt.version,
                          llm_called=False, note="Nothing was retrieved, so no LLM was called.", timings_ms=timings)
        if self.llm is None:
            return Answer(extractive_answer(request.question, hits), citations, prompt.prompt_id, prompt.version,
                          llm_called=False, note=NO_LLM_NOTE, timings_ms=timings)
        started = time.perf_counter()
        generation = self.llm.generate(prompt)
        timings["generation"] = (time.perf_counter() - started) * 1000
        return Answer(
            generation.text,
            citations,
            prompt.prompt_id,
            prompt.version,
            llm_called=True,
            model=generation.model,
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            timings_ms=timings,
        )
