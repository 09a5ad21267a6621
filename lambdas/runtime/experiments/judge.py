"""The judge: per decision metric, each arm against the control arm; a verdict with its evidence.

Input is interaction records (the monitoring record format) grouped by arm, each carrying the
metric values to compare under ``metrics`` (computed by the monitoring library, or by the caller).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

from lambdas.runtime.experiments.stats import Comparison, compare, holm

# Metrics where lower is better; every other decision metric is "higher is better".
LOWER_IS_BETTER = frozenset({
    "latency_ms", "cost_per_request", "toxicity", "hallucination", "refusal", "jailbreak", "injection", "repetition",
    "prompt_tokens", "response_tokens",
})


@dataclass
class Verdict:
    experiment: str
    status: str  # "winner" | "no-difference" | "not-yet-decidable" | "mixed"
    winner: str | None
    samples: dict[str, int]
    min_samples: int
    alpha: float
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["comparisons"] = [{**asdict(c), "better": c.better} for c in self.comparisons]
        return data

    def summary(self) -> str:
        lines = [f"experiment {self.experiment}: {self.status}" + (f" ({self.winner})" if self.winner else "")]
        lines.append("  samples: " + ", ".join(f"{arm} {n}" for arm, n in self.samples.items())
                     + f" (minimum {self.min_samples} per arm)")
        for c in self.comparisons:
            lines.append(
                f"  {c.metric:<18} {c.treatment} - {c.control}: {c.difference:+.4f} "
                f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}] p={c.p_value:.4f} (Holm {c.p_adjusted:.4f})"
                + (f" -> {c.better} better" if c.better else "")
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def metric_values(records: Iterable[Mapping[str, Any]], metric: str) -> list[float]:
    values = []
    for record in records:
        value = (record.get("metrics") or {}).get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values.append(float(value))
    return values


def judge(name: str, arms: Mapping[str, list[Mapping[str, Any]]], metrics: list[str], *, control: str | None = None,
          min_samples: int = 100, alpha: float = 0.05, resamples: int = 2000, seed: int = 0) -> Verdict:
    """Compare every arm with ``control`` (default: the first arm) on every metric."""
    if len(arms) < 2:
        raise ValueError(f"experiment {name}: needs at least two arms with records, got {list(arms)}")
    control = control or next(iter(arms))
    if control not in arms:
        raise ValueError(f"experiment {name}: control arm {control!r} has no records; arms: {list(arms)}")
    samples = {arm: len(records) for arm, records in arms.items()}
    verdict = Verdict(name, "not-yet-decidable", None, samples, min_samples, alpha)
    short = [arm for arm, n in samples.items() if n < min_samples]
    if short:
        verdict.notes.append("too few samples in " + ", ".join(f"{a} ({samples[a]})" for a in short))
        return verdict
    comparisons = []
    for metric in metrics:
        base = metric_values(arms[control], metric)
        for arm, records in arms.items():
            if arm == control:
                continue
            values = metric_values(records, metric)
            if len(base) < min_samples or len(values) < min_samples:
                verdict.notes.append(f"{metric}: too few values ({control} {len(base)}, {arm} {len(values)})")
                continue
            comparisons.append(compare(metric, control, base, arm, values, higher_is_better=metric not in LOWER_IS_BETTER,
                                       resamples=resamples, seed=seed))
    if not comparisons:
        return verdict
    verdict.comparisons = holm(comparisons, alpha)
    winners = {c.better for c in verdict.comparisons if c.better}
    if not winners:
        verdict.status = "no-difference"
    elif len(winners) == 1:
        verdict.status, verdict.winner = "winner", winners.pop()
    else:
        verdict.status = "mixed"
        verdict.notes.append("different arms win on different metrics: " + ", ".join(
            f"{c.metric}->{c.better}" for c in verdict.comparisons if c.better))
    return verdict


def arms_from_records(records: Iterable[Mapping[str, Any]], key: str) -> dict[str, list[Mapping[str, Any]]]:
    """Group interaction records by ``metadata[key]`` (prompt_version, variant, embedding_model...)."""
    arms: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        arm = (record.get("metadata") or {}).get(key)
        if arm is not None:
            arms.setdefault(str(arm), []).append(record)
    return arms


def verdict_json(verdict: Verdict) -> str:
    return json.dumps(verdict.to_dict(), indent=1, sort_keys=True)
