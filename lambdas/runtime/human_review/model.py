"""The interaction a reviewer sees, and the review that comes back, as typed models."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PROBLEMS = ("unsupported_claim", "wrong_citation", "harmful_content", "unhelpful_refusal", "off_topic")
MAX_TEXT = 20_000  # characters shown per field; A2I input content is limited to 100 KB


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Passage(_Model):
    text: str = Field(max_length=MAX_TEXT)
    source: str = Field("", max_length=2048)


class ReviewInput(_Model):
    """One answered question, as routed to review (``HumanLoopInput.InputContent``)."""

    interaction_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")
    question: str = Field(min_length=1, max_length=MAX_TEXT)
    answer: str = Field(max_length=MAX_TEXT)
    contexts: tuple[Passage, ...] = Field((), max_length=50)
    prompt_id: str = ""
    prompt_version: int | None = None
    model: str = ""
    reasons: tuple[str, ...] = ()  # why routing chose it
    instructions: str = ""

    def loop_name(self) -> str:
        """Deterministic A2I loop name (1-63 of a-z 0-9 -): a redelivered message starts no second loop."""
        return "llm-" + hashlib.sha256(self.interaction_id.encode("utf-8")).hexdigest()[:40]


class ReviewAnswer(_Model):
    """What one worker submitted through the template's form."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # crowd-form adds its own fields
    rating: int = Field(ge=1, le=5)
    problems: tuple[Literal["unsupported_claim", "wrong_citation", "harmful_content", "unhelpful_refusal", "off_topic"], ...] = ()
    corrected_answer: str = Field("", max_length=MAX_TEXT)

    @field_validator("corrected_answer")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class ReviewedInteraction(_Model):
    loop_name: str
    input: ReviewInput
    answers: tuple[ReviewAnswer, ...] = Field(min_length=1)

    @property
    def mean_rating(self) -> float:
        return sum(a.rating for a in self.answers) / len(self.answers)

    @property
    def problem_rates(self) -> dict[str, float]:
        return {p: sum(p in a.problems for a in self.answers) / len(self.answers) for p in PROBLEMS}

    @property
    def corrected_answer(self) -> str:
        """The correction of the best-rated worker who wrote one ('' when none did)."""
        written = [a for a in self.answers if a.corrected_answer]
        return max(written, key=lambda a: a.rating).corrected_answer if written else ""
