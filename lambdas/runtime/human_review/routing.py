"""Which answered questions go to human review: a sampled share plus rules on the monitoring metrics."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any, Mapping


@dataclass(frozen=True)
class RoutingRules:
    sample_rate: float = 0.02  # share of all interactions, chosen by a hash of the id (stable across retries)
    min_relevance: float | None = 0.3
    max_hallucination: float | None = 0.5
    max_toxicity: float | None = 0.5
    refusal: bool = True  # a refusal goes to review (unhelpful or right?)
    min_top_score: float | None = 0.2
    negative_feedback: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.sample_rate <= 1:
            raise ValueError(f"sample_rate: must be between 0 and 1, got {self.sample_rate}")


ROUTING_ENV = "REVIEW_ROUTING"  # the query function's copy of config human_review.routing (JSON), set when review is on


def rules_from_json(text: str) -> RoutingRules:
    """The rules as the stack hands them to a function (config ``human_review.routing`` as JSON)."""
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError(f"{ROUTING_ENV}: expected a JSON object of routing rules, got {type(raw).__name__}")
    known = {f.name for f in fields(RoutingRules)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{ROUTING_ENV}: unknown rule(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return RoutingRules(**raw)


def _sampled(interaction_id: str, rate: float) -> bool:
    bucket = int(hashlib.sha256(interaction_id.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return bucket < rate


def review_reasons(interaction_id: str, metrics: Mapping[str, Any], rules: RoutingRules,
                   feedback: str | None = None) -> list[str]:
    """Why this interaction needs review (empty: it does not). Missing metrics trigger no rule."""
    reasons = []

    def value(name: str) -> float | None:
        raw = metrics.get(name)
        return float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None

    if rules.min_relevance is not None and (v := value("relevance")) is not None and v < rules.min_relevance:
        reasons.append(f"relevance {v:.2f} < {rules.min_relevance}")
    if rules.max_hallucination is not None and (v := value("hallucination")) is not None and v > rules.max_hallucination:
        reasons.append(f"hallucination {v:.2f} > {rules.max_hallucination}")
    if rules.max_toxicity is not None and (v := value("toxicity")) is not None and v > rules.max_toxicity:
        reasons.append(f"toxicity {v:.2f} > {rules.max_toxicity}")
    if rules.refusal and (v := value("refusal")) is not None and v >= 0.5:
        reasons.append("refusal")
    if rules.min_top_score is not None and (v := value("top_score")) is not None and v < rules.min_top_score:
        reasons.append(f"top retrieval score {v:.2f} < {rules.min_top_score}")
    if rules.negative_feedback and feedback == "down":
        reasons.append("negative feedback")
    if not reasons and _sampled(interaction_id, rules.sample_rate):
        reasons.append(f"sampled ({rules.sample_rate:.0%})")
    return reasons
