"""The quality gate: compare an evaluation report's metrics with the environment's thresholds.

Threshold names: ``min_<metric>`` (the metric must be at least this) and ``max_perplexity``.
A threshold of 0 (or below) is off, so every pipeline run can pass all thresholds as parameters.
A threshold for a metric the task does not produce (e.g. ``min_accuracy`` on an instruction
dataset) is reported as not applicable, never silently passed as a check.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Mapping

THRESHOLDS = {
    "min_rouge_l": ("rouge_l", "min"),
    "min_bleu": ("bleu", "min"),
    "min_exact_match": ("exact_match", "min"),
    "min_token_f1": ("token_f1", "min"),
    "min_accuracy": ("accuracy", "min"),
    "min_f1": ("f1", "min"),
    "max_perplexity": ("perplexity", "max"),
}


@dataclass
class CheckResult:
    passed: bool
    failures: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    not_applicable: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return "; ".join(self.failures) if self.failures else "all thresholds met"

    def to_dict(self) -> dict:
        return {**asdict(self), "reason": self.reason}


def check(metrics: Mapping[str, float], thresholds: Mapping[str, float]) -> CheckResult:
    unknown = sorted(set(thresholds) - set(THRESHOLDS))
    if unknown:
        raise ValueError(f"unknown threshold(s) {unknown}; allowed: {sorted(THRESHOLDS)}")
    result = CheckResult(passed=True)
    for name, limit in sorted(thresholds.items()):
        if limit is None or limit <= 0:
            continue
        metric, kind = THRESHOLDS[name]
        if metric not in metrics:
            result.not_applicable.append(name)
            continue
        value = metrics[metric]
        result.checked.append(name)
        bad = not math.isfinite(value) or (value < limit if kind == "min" else value > limit)
        if bad:
            sign = ">=" if kind == "min" else "<="
            result.failures.append(f"{metric} {value:.4g} is not {sign} {limit:g}")
    result.passed = not result.failures
    return result
