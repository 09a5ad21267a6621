"""boto3 clients for the data-prep handlers: created once per container, standard retries."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    # The SDK retries throttling a few times first; the state machine retries with backoff after.
    return boto3.client(service, config=Config(retries={"mode": "standard", "max_attempts": 5}))
