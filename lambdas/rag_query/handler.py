"""RAG query Lambda: ``POST /query`` (API Gateway REST, IAM-authorised) -> cited answer; ``POST /feedback``
-> a thumbs up/down stored with the logged interaction (docs/rag.md, "Feedback").

400 names the problem with the request. A failing dependency answers 502 (it returned an
error), 503 (unreachable, not ready, throttled, or a scaled-to-zero model starting; with Retry-After) or 504 (it timed out), with a
JSON body naming the dependency and the request id and nothing of the cause, which is logged
under that request id. Metrics go out as EMF with the prompt id and version as dimensions, so
prompt versions can be compared.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from functools import lru_cache

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.runtime.human_review.routing import ROUTING_ENV, RoutingRules, review_reasons, rules_from_json
from lambdas.runtime.prompt_catalog.errors import PromptCatalogError
from lambdas.runtime.monitoring.metrics import cheap_metrics
from lambdas.runtime.monitoring.records import record_from_answer
from lambdas.runtime.rag.embedders import embedder_from_env
from lambdas.runtime.rag.feedback import InvalidFeedback, UnknownInteraction, parse_feedback, record_feedback
from lambdas.runtime.rag.interactions import InteractionLog, new_interaction_id
from lambdas.runtime.rag.llm import PromptIncompatible, language_model_from_env
from lambdas.runtime.rag.prompting import DEFAULT_PROMPT_ID, prompt_source_from_env
from lambdas.runtime.rag.query import (
    DEFAULT_MAX_QUESTION_CHARS,
    DEFAULT_TOP_K,
    Answer,
    DependencyFailed,
    InvalidQuery,
    QueryPipeline,
    parse_request,
)
from lambdas.runtime.rag.retry import ModelStarting, UpstreamThrottled, failure_status
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


@lru_cache(maxsize=1)
def interaction_log() -> InteractionLog | None:
    return InteractionLog.from_env(os.environ)


def log_interaction(question: str, answer: Answer, quality: dict[str, float] | None = None) -> str:
    """Store the interaction (scorer, feedback, review and experiments read it); never fails the answer.

    With human review on, the record's ``metadata.review`` says why routing flags it (``[]``: not
    flagged); the batch scorer forwards flagged records from the table's stream, off the request path.
    """
    interaction_id = new_interaction_id()
    log = interaction_log()
    if log is None:
        return interaction_id
    record = record_from_answer(question, answer, record_id=interaction_id,
                                time=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    if routing_rules() is not None:
        record["metadata"]["review"] = review_flags(interaction_id, quality or {})
    try:
        log.put(record)
    except Exception:  # noqa: BLE001 - the caller still gets the answer; the metric's alarm tells the operator
        # Its own EMF blob: the alarm watches it by service alone, without the prompt dimensions.
        with single_metric(name="InteractionLogFailures", unit=MetricUnit.Count, value=1,
                           default_dimensions={"service": os.environ.get("POWERTOOLS_SERVICE_NAME", "rag_query")}):
            pass
        logger.exception("interaction not logged", extra={"interaction_id": interaction_id, "request_id": _request_id()})
    return interaction_id


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


def emit_quality_metrics(question: str, answer: Answer) -> dict[str, float]:
    """The monitoring library's model-free metrics of this answer (lengths, readability, refusal, injection...)."""
    values = cheap_metrics(
        question, answer.answer, contexts=[c.text for c in answer.citations if c.text],
        metadata={"scores": [c.score for c in answer.citations], "prompt_tokens": answer.prompt_tokens,
                  "response_tokens": answer.completion_tokens, "embedding_ms": answer.timings_ms.get("embedding"),
                  "retrieval_ms": answer.timings_ms.get("retrieval")},
    )
    for name, value in values.items():
        if math.isfinite(value):
            metrics.add_metric(name=f"Quality.{name}", unit=MetricUnit.NoUnit, value=value)
    return values


@lru_cache(maxsize=1)
def routing_rules() -> RoutingRules | None:
    """config human_review.routing, when human review is on in this environment."""
    raw = os.environ.get(ROUTING_ENV)
    return rules_from_json(raw) if raw else None


def review_flags(interaction_id: str, quality: dict[str, float]) -> list[str]:
    """Why this answer should go to human review (empty: it should not), from the metrics already computed.

    The request-time rules see refusal and the top retrieval score (and the sample); the batch scorer
    adds the model-based ones (relevance, hallucination, toxicity) and negative feedback later.
    """
    rules = routing_rules()
    if rules is None:
        return []
    reasons = review_reasons(interaction_id, quality, rules)
    if reasons:
        metrics.add_metric(name="ReviewFlagged", unit=MetricUnit.Count, value=1)
    return reasons


@app.post("/query")
def query() -> dict | Response:
    env = os.environ
    try:
        payload = app.current_event.json_body
    except ValueError:
        metrics.add_metric(name="InvalidRequests", unit=MetricUnit.Count, value=1)
        return _error(400, "InvalidRequest", "the body must be valid JSON")
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
        return _error(400, "InvalidRequest", str(exc))
    emit_metrics(answer)
    quality = emit_quality_metrics(request.question, answer)
    interaction_id = log_interaction(request.question, answer, quality)
    logger.info("answered", extra={"prompt_id": answer.prompt_id, "prompt_version": answer.prompt_version,
                                    "chunks": len(answer.citations), "llm_called": answer.llm_called,
                                    "interaction_id": interaction_id})
    return {**answer.to_dict(), "interaction_id": interaction_id}


@lru_cache(maxsize=1)
def dynamodb():
    import boto3

    return boto3.client("dynamodb")


def _prompt_of(table: str, interaction_id: str) -> tuple[str, str]:
    """The prompt id and version an interaction was answered with (the feedback metric's dimensions)."""
    try:  # only these attributes: the function's GetItem is limited to them (IAM dynamodb:Attributes)
        item = dynamodb().get_item(
            TableName=table, Key={"interaction_id": {"S": interaction_id}},
            ProjectionExpression="#id, prompt_id, prompt_version", ExpressionAttributeNames={"#id": "interaction_id"},
        ).get("Item") or {}
    except Exception:  # the feedback is stored; a lost dimension is no reason to fail the request
        logger.warning("prompt of the interaction unavailable for the feedback metric", exc_info=True)
        item = {}

    def text(name: str) -> str:
        value = item.get(name) or {}
        return str(value.get("S") or value.get("N") or "unknown")

    return text("prompt_id"), text("prompt_version")


@app.post("/feedback")
def feedback() -> dict | Response:
    try:
        payload = app.current_event.json_body
    except ValueError:
        metrics.add_metric(name="InvalidRequests", unit=MetricUnit.Count, value=1)
        return _error(400, "InvalidRequest", "the body must be valid JSON")
    try:
        given = parse_feedback(payload)
    except InvalidFeedback as exc:
        metrics.add_metric(name="InvalidRequests", unit=MetricUnit.Count, value=1)
        return _error(400, "InvalidRequest", str(exc))
    table = os.environ.get("INTERACTIONS_TABLE")
    if not table:  # a deployment without the interaction log: nothing to attach feedback to
        return _error(500, "FeedbackUnavailable", "feedback is not stored in this deployment (no interaction log)")
    try:
        stored = record_feedback(dynamodb(), table, given)
    except UnknownInteraction as exc:
        metrics.add_metric(name="FeedbackUnknownInteraction", unit=MetricUnit.Count, value=1)
        return _error(404, "UnknownInteraction", str(exc), interaction_id=exc.interaction_id)
    except Exception as exc:  # DynamoDB failed or throttled: the structured 502/503/504 of any dependency
        raise DependencyFailed("interaction log", failure_status(exc)) from exc
    prompt_id, prompt_version = _prompt_of(table, given.interaction_id)
    metrics.add_dimension(name="PromptId", value=prompt_id)
    metrics.add_dimension(name="PromptVersion", value=prompt_version)
    metrics.add_dimension(name="Rating", value=given.rating)
    metrics.add_metric(name="Feedback", unit=MetricUnit.Count, value=1)
    logger.info("feedback stored", extra={"interaction_id": given.interaction_id, "rating": given.rating,
                                          "prompt_id": prompt_id, "prompt_version": prompt_version})
    return {"interaction_id": given.interaction_id, "feedback": stored}


ERROR_CODES = {502: "DependencyFailed", 503: "DependencyUnavailable", 504: "DependencyTimeout"}


def _request_id() -> str:
    try:
        return app.current_event.request_context.request_id or "unknown"
    except (AttributeError, KeyError, TypeError):
        return "unknown"


def _error(status: int, code: str, message: str, retry_after: int = 5, **extra) -> Response:
    headers = {"Retry-After": str(retry_after)} if status == 503 else None
    return Response(status_code=status, content_type="application/json", headers=headers,
                    body={"error": code, "message": message, "request_id": _request_id(), **extra})


@app.exception_handler(DependencyFailed)
def dependency_failed(exc: DependencyFailed) -> Response:
    metrics.add_metric(name="DependencyFailures", unit=MetricUnit.Count, value=1)
    # The cause (stack, driver message, endpoint answer) goes to the logs only, under the request id.
    logger.error("dependency failed", exc_info=exc.__cause__ or exc,
                 extra={"dependency": exc.dependency, "status": exc.status, "request_id": _request_id()})
    verb = {502: "answered with an error", 503: "is unavailable", 504: "timed out"}[exc.status]
    message = f"the {exc.dependency} {verb}"
    message += f": {exc.public_detail}" if exc.public_detail else ""
    message += "; retry later" if exc.status in (503, 504) and not exc.public_detail.endswith("retry shortly") else ""
    return _error(exc.status, ERROR_CODES[exc.status], message, retry_after=exc.retry_after, dependency=exc.dependency)


@app.exception_handler(UpstreamThrottled)
def throttled(exc: UpstreamThrottled) -> Response:
    metrics.add_metric(name="UpstreamThrottled", unit=MetricUnit.Count, value=1)
    logger.warning("model throttled after retries", extra={"error": str(exc)})
    return _error(503, "DependencyUnavailable", f"{exc}; retry later", dependency=exc.service)


@app.exception_handler(StoreUnavailable)
def store_unavailable(exc: StoreUnavailable) -> Response:
    # Within the API's 29 s: PG_CONNECT_TIMEOUT is sized below the function timeout (docs/rag.md).
    metrics.add_metric(name="StoreUnavailable", unit=MetricUnit.Count, value=1)
    logger.warning("vector store unavailable", extra={"error": str(exc)})
    return _error(503, "DependencyUnavailable", str(exc), retry_after=10, dependency="vector store")


@app.exception_handler(ModelStarting)
def starting(exc: ModelStarting) -> Response:
    # A scaled-to-zero endpoint is bringing up its first copy (minutes): say so instead of a bare 5xx.
    metrics.add_metric(name="ModelStarting", unit=MetricUnit.Count, value=1)
    logger.info("model is starting", extra={"error": str(exc)})
    return _error(503, "DependencyUnavailable", str(exc), retry_after=120, dependency="language model",
                  reason="model is starting")


@app.exception_handler(PromptCatalogError)
def prompt_unavailable(exc: PromptCatalogError) -> Response:
    # A missing prompt or alias is a deployment problem, not the caller's: 500 with the reason.
    metrics.add_metric(name="PromptUnavailable", unit=MetricUnit.Count, value=1)
    logger.error("prompt could not be rendered", extra={"error": str(exc)})
    return _error(500, "PromptUnavailable", f"the answer prompt is unavailable: {exc}")


@app.exception_handler(PromptIncompatible)
def prompt_incompatible(exc: PromptIncompatible) -> Response:
    metrics.add_metric(name="PromptUnavailable", unit=MetricUnit.Count, value=1)
    logger.error("prompt does not fit the model", extra={"error": str(exc)})
    return _error(500, "PromptIncompatible", f"the answer prompt does not fit the configured model: {exc}")


@app.not_found
def not_found(_exc: Exception) -> Response:
    # Registered explicitly: the catch-all below would otherwise answer unknown routes with a 500.
    metrics.add_metric(name="InvalidRequests", unit=MetricUnit.Count, value=1)
    return _error(404, "NotFound", f"no route {app.current_event.http_method} {app.current_event.path}")


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response:
    # A bug, never the caller's input: the stack goes to the logs, the caller gets the request id.
    logger.exception("unexpected failure", extra={"request_id": _request_id()})
    return _error(500, "InternalError", "internal error; quote the request id to the operator")


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
