"""RAG query Lambda: ``POST /query`` (API Gateway REST, IAM-authorised) -> cited answer.

400 names the problem with the request; 503 says which model kept throttling. Metrics go out
as EMF with the prompt id and version as dimensions, so prompt versions can be compared.
"""

from __future__ import annotations

import os
from functools import lru_cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import BadRequestError
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.runtime.prompt_catalog.errors import PromptCatalogError
from lambdas.runtime.rag.embedders import embedder_from_env
from lambdas.runtime.rag.llm import language_model_from_env
from lambdas.runtime.rag.prompting import DEFAULT_PROMPT_ID, prompt_source_from_env
from lambdas.runtime.rag.query import (
    DEFAULT_MAX_QUESTION_CHARS,
    DEFAULT_TOP_K,
    Answer,
    InvalidQuery,
    QueryPipeline,
    parse_request,
)
from lambdas.runtime.rag.retry import UpstreamThrottled
from lambdas.runtime.rag.store import StoreUnavailable, store_from_env

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()


@lru_cache(maxsize=1)
def pipeline() -> QueryPipeline:
    env = os.environ
    store = store_from_env(env)
    return QueryPipeline(
        store,
        None if hasattr(store, "search_text") else embedder_from_env(env),
        prompt_source_from_env(env),
        language_model_from_env(env),
        prompt_id=env.get("PROMPT_ID") or DEFAULT_PROMPT_ID,
        prompt_alias=env.get("PROMPT_ALIAS") or "prod",
    )


def emit_metrics(answer: Answer) -> None:
    metrics.add_dimension(name="PromptId", value=answer.prompt_id)
    metrics.add_dimension(name="PromptVersion", value=str(answer.prompt_version))
    metrics.add_metric(name="ChunksRetrieved", unit=MetricUnit.Count, value=len(answer.citations))
    if answer.top_score is not None:
        metrics.add_metric(name="TopScore", unit=MetricUnit.NoUnit, value=answer.top_score)
    for stage, name in (("embedding", "EmbeddingLatency"), ("retrieval", "RetrievalLatency"),
                        ("generation", "GenerationLatency")):
        if stage in answer.timings_ms:
            metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=answer.timings_ms[stage])
    if answer.prompt_tokens is not None:
        metrics.add_metric(name="PromptTokens", unit=MetricUnit.Count, value=answer.prompt_tokens)
    if answer.completion_tokens is not None:
        metrics.add_metric(name="CompletionTokens", unit=MetricUnit.Count, value=answer.completion_tokens)


@app.post("/query")
def query() -> dict:
    env = os.environ
    try:
        payload = app.current_event.json_body
    except ValueError:
        metrics.add_metric(name="InvalidRequests", unit=MetricUnit.Count, value=1)
        raise BadRequestError("the body must be valid JSON") from None
    rag = pipeline()
    try:
        request = parse_request(
            payload,
            filterable=rag.store.FILTERABLE_FIELDS,
            max_question_chars=int(env.get("MAX_QUESTION_CHARS") or DEFAULT_MAX_QUESTION_CHARS),
            default_top_k=int(env.get("TOP_K") or DEFAULT_TOP_K),
        )
        answer = rag.answer(request)
    except InvalidQuery as exc:
        metrics.add_metric(name="InvalidRequests", unit=MetricUnit.Count, value=1)
        raise BadRequestError(str(exc)) from None
    emit_metrics(answer)
    logger.info("answered", extra={"prompt_id": answer.prompt_id, "prompt_version": answer.prompt_version,
                                    "chunks": len(answer.citations), "llm_called": answer.llm_called})
    return answer.to_dict()


@app.exception_handler(UpstreamThrottled)
def throttled(exc: UpstreamThrottled) -> Response:
    metrics.add_metric(name="UpstreamThrottled", unit=MetricUnit.Count, value=1)
    logger.warning("model throttled after retries", extra={"error": str(exc)})
    return Response(status_code=503, content_type="application/json",
                    body={"message": f"{exc}; retry later"}, headers={"Retry-After": "5"})


@app.exception_handler(StoreUnavailable)
def store_unavailable(exc: StoreUnavailable) -> Response:
    # Within the API's 29 s: PG_CONNECT_TIMEOUT is sized below the function timeout (docs/rag.md).
    metrics.add_metric(name="StoreUnavailable", unit=MetricUnit.Count, value=1)
    logger.warning("vector store unavailable", extra={"error": str(exc)})
    return Response(status_code=503, content_type="application/json",
                    body={"message": str(exc)}, headers={"Retry-After": "10"})


@app.exception_handler(PromptCatalogError)
def prompt_unavailable(exc: PromptCatalogError) -> Response:
    # A missing prompt or alias is a deployment problem, not the caller's: 500 with the reason.
    metrics.add_metric(name="PromptUnavailable", unit=MetricUnit.Count, value=1)
    logger.error("prompt could not be rendered", extra={"error": str(exc)})
    return Response(status_code=500, content_type="application/json",
                    body={"message": f"the answer prompt is unavailable: {exc}"})


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
