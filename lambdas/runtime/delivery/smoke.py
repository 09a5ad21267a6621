"""Post-deploy smoke test of an environment: a signed ``POST /query`` and one tiny request per endpoint.

Run by the pipeline after dev and staging (``llmops delivery smoke``) with the environment's gate
role. A scaled-to-zero model answers "no capacity" (the endpoint) or 503 "model is starting" (the
query API) until its first copy is up: those answers, throttling and 5xx are retried a bounded
number of times with a fixed interval; anything else fails at once. Every failure says what was
called, what came back and how long it waited.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

QUESTION = "Smoke test: what does this service answer?"
# Request bodies per container family, as small as the container accepts.
LLM_TEXT = "Reply with OK."
REQUESTS: dict[str, dict[str, Any]] = {
    "tgi": {"inputs": LLM_TEXT, "parameters": {"max_new_tokens": 4}},
    "tgi-neuronx": {"inputs": LLM_TEXT, "parameters": {"max_new_tokens": 4}},
    "djl-lmi": {"inputs": LLM_TEXT, "parameters": {"max_new_tokens": 4}},
    "djl-tensorrtllm": {"inputs": LLM_TEXT, "parameters": {"max_new_tokens": 4}},
    "djl-neuronx": {"inputs": LLM_TEXT, "parameters": {"max_new_tokens": 4}},
    "vllm": {"prompt": LLM_TEXT, "max_tokens": 4},
    "tei": {"inputs": "smoke test"},
    "tei-cpu": {"inputs": "smoke test"},
}
_STARTING = ("no capacity", "insufficient capacity", "no instances", "currently has no", "model is starting",
             "not ready", "modelnotready")
_RETRY_CODES = {"ThrottlingException", "Throttling", "ServiceUnavailable", "ModelNotReadyException",
                "InternalFailure", "InternalDependencyException"}


class SmokeFailed(RuntimeError):
    """The smoke test found the environment not serving; the message names the call and the answer."""


@dataclass
class Check:
    name: str
    detail: str
    attempts: int


def _retry(call: Callable[[], Any], *, what: str, attempts: int, interval: float, sleep: Callable[[float], None]) -> tuple[Any, int]:
    """(result, attempts used). ``call`` raises ``_Retryable`` for answers worth waiting out."""
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            return call(), attempt
        except _Retryable as exc:
            last = str(exc)
            if attempt < attempts:
                sleep(interval)
    raise SmokeFailed(f"{what}: still not serving after {attempts} attempts {interval:g} s apart "
                      f"(~{(attempts - 1) * interval:g} s): {last}. A scaled-to-zero model needs minutes for its first "
                      "copy; raise delivery.smoke_attempts if it needs longer.")


class _Retryable(Exception):
    pass


def signed_post(url: str, body: dict[str, Any], *, credentials: Any, region: str, service: str = "execute-api",
                timeout: float = 35.0) -> tuple[int, bytes]:
    """POST ``body`` as JSON, SigV4-signed with ``credentials`` (botocore); (status, body)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    data = json.dumps(body).encode("utf-8")
    request = AWSRequest(method="POST", url=url, data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(credentials, service, region).add_auth(request)
    prepared = urllib.request.Request(url, data=data, method="POST", headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=timeout) as response:  # noqa: S310 - an https URL from config
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def smoke_query_api(url: str, *, credentials: Any, region: str, attempts: int = 20, interval: float = 30.0,
                    sleep: Callable[[float], None] = time.sleep, question: str = QUESTION) -> Check:
    """A signed ``POST /query``; 200 with an ``answer`` passes, 503/429/502/504 are waited out."""
    what = f"POST {url}"

    def call() -> str:
        try:
            status, raw = signed_post(url, {"question": question}, credentials=credentials, region=region)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise _Retryable(f"no answer ({exc})") from None
        text = raw.decode("utf-8", "replace")[:500]
        if status in (429, 502, 503, 504):
            raise _Retryable(f"HTTP {status}: {text}")
        if status != 200:
            raise SmokeFailed(f"{what}: HTTP {status}: {text}")
        try:
            payload = json.loads(raw)
        except ValueError:
            raise SmokeFailed(f"{what}: HTTP 200 but not JSON: {text}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("answer"), str):
            raise SmokeFailed(f"{what}: HTTP 200 without an 'answer' string: {text}")
        return f"answered {len(payload['answer'])} characters"

    detail, used = _retry(call, what=what, attempts=attempts, interval=interval, sleep=sleep)
    return Check(f"query API {url}", detail, used)


def _check_answer(container: str, payload: Any) -> str:
    if container.startswith("tei"):
        vectors = payload if isinstance(payload, list) else None
        first = vectors[0] if vectors else None
        if isinstance(first, list) and first and all(isinstance(x, (int, float)) for x in first):
            return f"embedding of {len(first)} values"
        if vectors and all(isinstance(x, (int, float)) for x in vectors):
            return f"embedding of {len(vectors)} values"
        raise ValueError("no embedding vector in the answer")
    item = payload[0] if isinstance(payload, list) and payload else payload
    if isinstance(item, dict) and isinstance(item.get("generated_text"), str):
        return f"generated {len(item['generated_text'])} characters"
    if isinstance(item, dict) and item.get("choices"):
        return "generated a completion"
    raise ValueError("no generated_text or choices in the answer")


def smoke_endpoint(client: Any, endpoint_name: str, container: str, *, component: str | None = None, attempts: int = 20,
                   interval: float = 30.0, sleep: Callable[[float], None] = time.sleep) -> Check:
    """One tiny InvokeEndpoint of the container's shape; "no capacity" (scaled to zero) is waited out."""
    if container not in REQUESTS:
        raise SmokeFailed(f"endpoint {endpoint_name}: no smoke request for container {container!r}; known: {', '.join(REQUESTS)}")
    request = {"EndpointName": endpoint_name, "ContentType": "application/json", "Accept": "application/json",
               "Body": json.dumps(REQUESTS[container])}
    if component:
        request["InferenceComponentName"] = component
    what = f"endpoint {endpoint_name}" + (f" (component {component})" if component else "")

    def call() -> str:
        from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

        try:
            response = client.invoke_endpoint(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            message = f"{error.get('Code')}: {error.get('Message')}"
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if error.get("Code") in _RETRY_CODES or any(m in message.lower() for m in _STARTING) or status in (429, 503):
                raise _Retryable(message) from None
            raise SmokeFailed(f"{what}: {message}") from None
        except (EndpointConnectionError, ReadTimeoutError) as exc:
            raise _Retryable(str(exc)) from None
        raw = response["Body"].read()
        try:
            return _check_answer(container, json.loads(raw))
        except ValueError as exc:
            raise SmokeFailed(f"{what}: {exc}: {raw[:300]!r}") from None

    detail, used = _retry(call, what=what, attempts=attempts, interval=interval, sleep=sleep)
    return Check(what, detail, used)
