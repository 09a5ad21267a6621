"""The Lambda context object handlers receive, as Powertools reads it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LambdaContext:
    function_name: str = "llmops-function"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "5b441b59-a550-11c8-6564-f1c833cf438c"
    remaining_ms: int = 60_000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:eu-west-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
