"""Backoff for throttled model calls: retried a bounded number of times, then raised, never swallowed."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Error codes SageMaker Runtime and Bedrock Runtime return when the model is busy or scaling.
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ModelNotReadyException",
        "ProvisionedThroughputExceededException",  # DynamoDB (the interaction log), on-demand tables too
        "RequestLimitExceeded",
    }
)
DEFAULT_ATTEMPTS = 5


class UpstreamThrottled(Exception):
    """A model endpoint kept throttling after every retry; callers report it (HTTP 503 / batch retry)."""

    def __init__(self, service: str, code: str, attempts: int) -> None:
        super().__init__(f"{service} throttled the request ({code}) on all {attempts} attempts")
        self.service = service
        self.code = code
        self.attempts = attempts


class ModelStarting(Exception):
    """The endpoint has no capacity (scaled to zero, or its first copy is loading): it is starting.

    Not retried: a cold start takes minutes, longer than one request may wait. Callers answer 503.
    """

    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"model is starting: {service} has no capacity yet ({message}); retry in a few minutes")
        self.service = service


# What SageMaker says when an inference component has no copy (scale to zero) or an endpoint has no instance.
_NO_CAPACITY = ("no capacity", "insufficient capacity", "no instances", "currently has no")


def is_no_capacity(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    message = str((response or {}).get("Error", {}).get("Message", "")).lower() if isinstance(response, dict) else ""
    return any(marker in message for marker in _NO_CAPACITY)


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def call_with_backoff(
    call: Callable[[], T],
    *,
    service: str,
    attempts: int = DEFAULT_ATTEMPTS,
    base_delay: float = 0.25,
    max_delay: float = 8.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; on a throttling error wait (exponential backoff, full jitter) and try again."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            code = error_code(exc)
            if is_no_capacity(exc):
                raise ModelStarting(service, str(exc.response["Error"].get("Message", ""))) from exc
            if code not in THROTTLING_CODES:
                raise
            if attempt == attempts:
                raise UpstreamThrottled(service, code, attempts) from exc
            sleep(random.uniform(0, min(max_delay, base_delay * 2 ** (attempt - 1))))
    raise AssertionError("unreachable")


# Exception class names that mean "took too long" (botocore, urllib3, psycopg, the standard library).
_TIMEOUT_NAMES = frozenset({"ReadTimeoutError", "ConnectTimeoutError", "ConnectTimeout", "ReadTimeout", "TimeoutError",
                            "timeout", "QueryCanceled", "ConnectionTimeout"})
# ... and "could not be reached or is not ready".
_UNAVAILABLE_NAMES = frozenset({"EndpointConnectionError", "ConnectionClosedError", "ConnectionError", "OperationalError",
                                "ConnectionRefusedError", "ConnectionResetError", "PoolTimeout", "InterfaceError"})


def failure_status(exc: BaseException) -> int:
    """The HTTP status a failed dependency call answers with: 504 timed out, 503 unavailable or throttled, 502 else."""
    if isinstance(exc, UpstreamThrottled) or error_code(exc) in THROTTLING_CODES:
        return 503
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _TIMEOUT_NAMES or "timeout" in str(exc).lower()[:200] and names & _UNAVAILABLE_NAMES:
        return 504
    if names & _UNAVAILABLE_NAMES:
        return 503
    return 502


def client_config():  # botocore's own retries off: call_with_backoff is the single retry layer
    from botocore.config import Config

    return Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=60)
