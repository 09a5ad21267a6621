"""Prompt catalog REST API (API Gateway REST, IAM-authorised, Lambda proxy integration).

Routes:
  GET  /prompts                                  list prompts (?limit, ?next_token)
  GET  /prompts/{id}                             prompt metadata and aliases
  GET  /prompts/{id}/versions                    version summaries, newest first (?limit, ?before)
  POST /prompts/{id}/versions                    create the next version
  GET  /prompts/{id}/versions/{version}          one version
  GET  /prompts/{id}/aliases/{alias}             an alias and the version(s) it points to
  PUT  /prompts/{id}/aliases/{alias}             move an alias (optimistic locking: expected_revision)
  GET  /prompts/{id}/diff?from=N&to=M            diff two versions
  POST /prompts/{id}/render                      render with variables (by version or alias)

Every error answers JSON ``{"error", "message", ...}`` with 400/404/409/413; nothing a caller
sends produces a 500.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.runtime.prompt_catalog.errors import PromptCatalogError, PromptValidationError
from lambdas.runtime.prompt_catalog.model import check_alias_name, parse_content, pydantic_problems
from lambdas.runtime.prompt_catalog.store import PromptCatalogStore

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()
# Read-only routes emit no metric; Powertools would warn about that on every call.
warnings.filterwarnings("ignore", message="No application metrics to publish")


@lru_cache(maxsize=1)
def get_store() -> PromptCatalogStore:
    return PromptCatalogStore.from_env()


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateVersionRequest(_Request):
    content: dict[str, Any]
    change_note: str = Field("", max_length=2000)
    description: str | None = Field(None, max_length=2000)
    owner: str | None = Field(None, max_length=256)
    tags: list[str] | None = Field(None, max_length=50)
    only_if_changed: bool = False


class AliasTargetRequest(_Request):
    version: int
    weight: int = 100


class MoveAliasRequest(_Request):
    targets: list[AliasTargetRequest] = Field(min_length=1, max_length=2)
    expected_revision: int = Field(ge=0)


class RenderRequest(_Request):
    variables: dict[str, Any] = Field(default_factory=dict)
    version: int | None = Field(None, ge=1)
    alias: str | None = None


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body, default=str))


def _body(model: type[BaseModel]) -> Any:
    raw = app.current_event.body
    if raw is None or raw == "":
        raise PromptValidationError("required: a JSON object", "body")
    try:
        data = json.loads(app.current_event.decoded_body)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise PromptValidationError(f"not valid JSON: {exc}", "body") from None
    if not isinstance(data, dict):
        raise PromptValidationError("must be a JSON object", "body")
    try:
        return parse(event=data, model=model)
    except ValidationError as err:
        raise PromptValidationError(pydantic_problems(err)) from None
    except Exception as err:  # the parser wraps some pydantic failures in its own error type
        raise PromptValidationError(str(err), "body") from None


def _int_param(name: str, default: int | None = None, *, minimum: int = 1) -> int | None:
    raw = (app.current_event.query_string_parameters or {}).get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise PromptValidationError(f"must be an integer, got {raw!r}", name) from None
    if value < minimum:
        raise PromptValidationError(f"must be >= {minimum}, got {value}", name)
    return value


def _version_param(raw: str, name: str = "version") -> int:
    if not raw.isdigit() or int(raw) < 1 or len(raw) > 10:
        raise PromptValidationError(f"must be a positive integer, got {raw!r}", name)
    return int(raw)


def _caller() -> str:
    # With IAM authorisation API Gateway puts the signing principal here: versions record it.
    identity = (app.current_event.raw_event.get("requestContext") or {}).get("identity") or {}
    return str(identity.get("userArn") or identity.get("caller") or "unknown")


@app.get("/prompts")
def list_prompts() -> Response:
    token = (app.current_event.query_string_parameters or {}).get("next_token")
    page, next_token = get_store().list_prompts(limit=_int_param("limit", 50), after=token)
    return _json(200, {"prompts": [p.to_dict() for p in page], "next_token": next_token})


@app.get("/prompts/<prompt_id>")
def get_prompt(prompt_id: str) -> Response:
    store = get_store()
    info = store.get_prompt(prompt_id)
    return _json(200, {**info.to_dict(), "aliases": [a.to_dict() for a in store.list_aliases(prompt_id)]})


@app.get("/prompts/<prompt_id>/versions")
def list_versions(prompt_id: str) -> Response:
    page, before = get_store().list_versions(prompt_id, limit=_int_param("limit", 50), before=_int_param("before"))
    return _json(200, {"prompt_id": prompt_id, "versions": page, "next_before": before})


@app.post("/prompts/<prompt_id>/versions")
def create_version(prompt_id: str) -> Response:
    request = _body(CreateVersionRequest)
    content = parse_content(request.content, "content")
    version, created = get_store().create_version(
        prompt_id,
        content,
        change_note=request.change_note,
        author=_caller(),
        description=request.description,
        owner=request.owner,
        tags=request.tags,
        only_if_changed=request.only_if_changed,
    )
    if created:
        metrics.add_metric(name="PromptVersionCreated", unit=MetricUnit.Count, value=1)
        logger.info("prompt version created", extra={"prompt_id": prompt_id, "version": version.version, "content_hash": version.content_hash})
    return _json(201 if created else 200, {**version.to_dict(), "created": created})


@app.get("/prompts/<prompt_id>/versions/<version>")
def get_version(prompt_id: str, version: str) -> Response:
    return _json(200, get_store().get_version(prompt_id, _version_param(version)).to_dict())


@app.get("/prompts/<prompt_id>/aliases/<alias>")
def get_alias(prompt_id: str, alias: str) -> Response:
    store = get_store()
    resolved = store.resolve_alias(prompt_id, check_alias_name(alias))
    versions = [store.get_version(prompt_id, t.version).to_dict() for t in resolved.targets]
    return _json(200, {**resolved.to_dict(), "versions": versions})


@app.put("/prompts/<prompt_id>/aliases/<alias>")
def move_alias(prompt_id: str, alias: str) -> Response:
    request = _body(MoveAliasRequest)
    try:
        moved = get_store().move_alias(
            prompt_id,
            alias,
            [t.model_dump() for t in request.targets],
            expected_revision=request.expected_revision,
            updated_by=_caller(),
        )
    except PromptCatalogError as err:
        if err.status == 409:
            metrics.add_metric(name="PromptAliasConflict", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="PromptAliasMoved", unit=MetricUnit.Count, value=1)
    logger.info("prompt alias moved", extra={"alias_move": moved.to_dict()})
    return _json(200, moved.to_dict())


@app.get("/prompts/<prompt_id>/diff")
def diff(prompt_id: str) -> Response:
    from lambdas.runtime.prompt_catalog.diff import diff_versions

    params = app.current_event.query_string_parameters or {}
    if "from" not in params or "to" not in params:
        raise PromptValidationError("both 'from' and 'to' version numbers are required", "query")
    store = get_store()
    old = store.get_version(prompt_id, _version_param(params["from"], "from"))
    new = store.get_version(prompt_id, _version_param(params["to"], "to"))
    return _json(200, diff_versions(old, new))


@app.post("/prompts/<prompt_id>/render")
def render(prompt_id: str) -> Response:
    from lambdas.runtime.prompt_catalog.client import PromptCatalogClient

    request = _body(RenderRequest)
    if request.version is not None and request.alias is not None:
        raise PromptValidationError("give either version or alias, not both", "body")
    # No cache across requests: the API answers what the table holds now.
    client = PromptCatalogClient(get_store().table_name, store=get_store(), cache_ttl_seconds=0)
    if request.version is not None:
        rendered = client.render_version(prompt_id, request.version, request.variables)
    else:
        rendered = client.render(prompt_id, request.variables, alias=request.alias or "prod")
    metrics.add_metric(name="PromptRendered", unit=MetricUnit.Count, value=1)
    return _json(200, rendered.to_dict())


@app.exception_handler(PromptCatalogError)
def catalog_error(err: PromptCatalogError) -> Response:
    if err.status >= 500:
        logger.exception("prompt catalog failure")
    else:
        logger.info("request rejected", extra={"status": err.status, "error": err.code, "detail": str(err)[:500]})
    return _json(err.status, err.to_body())


@app.exception_handler(Exception)
def unexpected_error(_err: Exception) -> Response:
    # A bug or an AWS outage, never the caller's input: log the stack, answer without details.
    logger.exception("unexpected failure")
    return _json(500, {"error": "InternalError", "message": "internal error; see the function logs"})


@app.not_found
def not_found(_exc: Exception) -> Response:
    return _json(404, {"error": "NotFound", "message": f"no route {app.current_event.http_method} {app.current_event.path}"})


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
