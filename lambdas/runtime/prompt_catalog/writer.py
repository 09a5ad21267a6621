"""The one write path for prompt versions and metadata: the ``prompt_catalog_writer`` function.

Only that function's role may ``PutItem`` version items (and write metadata), and it only ever
creates them with ``attribute_not_exists``: no other principal, whatever it sends, can replace a
version. Every other writer (the REST API, the sync-at-deploy custom resource, any ``grant_write``
grantee) invokes it synchronously with one JSON request:

    {"operation": "create_version", "prompt_id": ..., "content": {...}, "change_note": ..., "author": ...,
     "description": ..., "owner": ..., "tags": [...], "only_if_changed": false}
    {"operation": "update_metadata", "prompt_id": ..., "description": ..., "owner": ..., "tags": [...]}

and gets ``{"version": {...}, "created": bool}`` / ``{"written": bool}``, or
``{"error": {"status", "body"}}`` for a catalog error (400/404/409/413), raised again on the
caller's side with the same status and body. Aliases and sync state stay with the callers: their
``UpdateItem`` may name only attributes no version item has.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from lambdas.runtime.prompt_catalog.errors import PromptCatalogError, PromptValidationError
from lambdas.runtime.prompt_catalog.model import PromptContent, PromptVersion, parse_content

# Set on every function that writes through the writer (never on the writer itself): its ARN.
WRITER_ENV = "PROMPT_VERSION_WRITER"
OPERATIONS = ("create_version", "update_metadata")


class WriterError(PromptCatalogError):
    """A catalog error the writer answered, with its status and body kept."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = int(status)
        self.code = str(body.get("error", "InternalError"))
        self._body = body
        super().__init__(str(body.get("message", self.code)))

    def to_body(self) -> dict:
        return dict(self._body)


def _version_to_wire(version: PromptVersion) -> dict[str, Any]:
    return {
        "prompt_id": version.prompt_id, "version": version.version, "content": version.content.model_dump(mode="json"),
        "content_hash": version.content_hash, "change_note": version.change_note, "author": version.author,
        "created_at": version.created_at,
    }


def _version_from_wire(data: dict[str, Any]) -> PromptVersion:
    return PromptVersion(
        prompt_id=data["prompt_id"], version=int(data["version"]), content=PromptContent.model_validate(data["content"]),
        content_hash=data["content_hash"], change_note=data["change_note"], author=data["author"], created_at=data["created_at"],
    )


def _optional_tags(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise PromptValidationError("must be a list of strings", "tags")
    return value


def _optional_text(request: dict[str, Any], name: str) -> str | None:
    value = request.get(name)
    if value is not None and not isinstance(value, str):
        raise PromptValidationError("must be a string", name)
    return value


def handle(store: Any, request: Any) -> dict[str, Any]:
    """Run one writer request against ``store`` (a direct store, never one that writes through a writer)."""
    try:
        if not isinstance(request, dict):
            raise PromptValidationError("the request must be a JSON object", "request")
        operation = request.get("operation")
        if operation not in OPERATIONS:
            raise PromptValidationError(f"must be one of {', '.join(OPERATIONS)}, got {operation!r}", "operation")
        prompt_id = request.get("prompt_id")
        if not isinstance(prompt_id, str):
            raise PromptValidationError("required: a string", "prompt_id")
        meta = {"description": _optional_text(request, "description"), "owner": _optional_text(request, "owner"),
                "tags": _optional_tags(request.get("tags"))}
        if operation == "update_metadata":
            return {"written": store.update_metadata(prompt_id, **meta)}
        content = parse_content(request.get("content"), "content")
        version, created = store.create_version(
            prompt_id, content, change_note=_optional_text(request, "change_note") or "",
            author=_optional_text(request, "author") or "unknown", only_if_changed=bool(request.get("only_if_changed", False)),
            **meta,
        )
        return {"version": _version_to_wire(version), "created": created}
    except PromptCatalogError as err:
        if err.status >= 500:
            raise  # a failure of the writer itself: the invoker sees a function error
        return {"error": {"status": err.status, "body": err.to_body()}}


class LambdaVersionWriter:
    """Writes versions and metadata by invoking the writer function (``RequestResponse``)."""

    def __init__(self, function: str, *, lambda_client: Any = None) -> None:
        if not function:
            raise ValueError(f"{WRITER_ENV}: the version writer function's name or ARN is required")
        if lambda_client is None:
            import boto3

            lambda_client = boto3.client("lambda")
        self.function = function
        self._lambda = lambda_client

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        response = self._lambda.invoke(FunctionName=self.function, InvocationType="RequestResponse",
                                       Payload=json.dumps(request).encode("utf-8"))
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            # The writer's own failure (not the caller's input): no details beyond its error type.
            detail = json.loads(payload or b"{}").get("errorType", "error") if payload else "error"
            raise RuntimeError(f"prompt version writer {self.function} failed ({response['FunctionError']}: {detail})")
        result = json.loads(payload)
        if "error" in result:
            raise WriterError(result["error"]["status"], result["error"]["body"])
        return result

    def create_version(self, prompt_id: str, content: PromptContent, *, change_note: str = "", author: str = "unknown",
                       description: str | None = None, owner: str | None = None, tags: Sequence[str] | None = None,
                       only_if_changed: bool = False) -> tuple[PromptVersion, bool]:
        result = self._call({
            "operation": "create_version", "prompt_id": prompt_id, "content": content.model_dump(mode="json"),
            "change_note": change_note, "author": author, "description": description, "owner": owner,
            "tags": list(tags) if tags is not None else None, "only_if_changed": only_if_changed,
        })
        return _version_from_wire(result["version"]), bool(result["created"])

    def update_metadata(self, prompt_id: str, *, description=None, owner=None, tags=None) -> bool:
        result = self._call({"operation": "update_metadata", "prompt_id": prompt_id, "description": description,
                             "owner": owner, "tags": list(tags) if tags is not None else None})
        return bool(result["written"])
