"""Render the worker task template the way A2I does (Liquid, inputs HTML-escaped)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lambdas.runtime.human_review.model import ReviewInput

TEMPLATE_PATH = Path(__file__).resolve().parent / "templates" / "llm-answer.liquid.html"


def template_source() -> str:
    return TEMPLATE_PATH.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _template():
    from liquid import Environment

    return Environment(autoescape=True).from_string(template_source())


def render(review: ReviewInput) -> str:
    """The HTML a worker sees for ``review`` (``task.input`` is the loop's input content)."""
    return _template().render(task={"input": review.model_dump(mode="json")})
