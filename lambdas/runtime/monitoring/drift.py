"""Versioned baselines of metric distributions, and drift of new traffic against one (PSI + two-sample KS)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from lambdas.runtime.monitoring.metrics import METRIC_SET_VERSION

BASELINE_FORMAT = "llmops-monitoring-baseline"
BINS = 10
MAX_SAMPLE = 5000  # values kept per metric for the KS test; evenly spaced order statistics beyond that
# Defaults of config monitoring.drift (psi_threshold, ks_pvalue, ks_threshold); tests/llmops/stacks/test_monitoring_stack.py
# checks they stay equal, and the CLI, the scorer and the alarms take the configured values.
PSI_THRESHOLD = 0.2  # the usual "significant shift" cut-off for the population stability index
KS_PVALUE = 0.01
KS_MIN_STATISTIC = 0.1  # with thousands of records KS flags tiny shifts; require a visible one too
MIN_RECORDS = 20


@dataclass(frozen=True)
class DriftRule:
    """The one drift rule (config ``monitoring.drift``): PSI ≥ psi_threshold, or KS p < ks_pvalue with statistic ≥ ks_threshold.

    ``drift()`` applies it; the CLI (``llmops monitor drift --env``) and the scorer build it from the
    environment's config, and the alarms read the verdict the scorer publishes (``Drift``, Statistic=Rule).
    """

    psi_threshold: float = PSI_THRESHOLD
    ks_threshold: float = KS_MIN_STATISTIC
    ks_pvalue: float = KS_PVALUE

    def drifted(self, psi: float, ks_statistic: float, ks_pvalue: float) -> bool:
        return psi >= self.psi_threshold or (ks_pvalue < self.ks_pvalue and ks_statistic >= self.ks_threshold)

    def options(self) -> dict[str, float]:
        """Keyword arguments of ``drift``."""
        return {"psi_threshold": self.psi_threshold, "ks_min_statistic": self.ks_threshold, "ks_pvalue": self.ks_pvalue}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "DriftRule":
        """From the scorer's DRIFT_PSI_THRESHOLD / DRIFT_KS_THRESHOLD / DRIFT_KS_PVALUE (set from config)."""
        return cls(float(env.get("DRIFT_PSI_THRESHOLD", PSI_THRESHOLD)), float(env.get("DRIFT_KS_THRESHOLD", KS_MIN_STATISTIC)),
                   float(env.get("DRIFT_KS_PVALUE", KS_PVALUE)))


class BaselineError(ValueError):
    """A baseline file that cannot be used for this comparison; the message names the difference."""


def _values(rows: Sequence[Mapping[str, Any]], name: str) -> list[float]:
    return [float(row[name]) for row in rows if isinstance(row.get(name), (int, float)) and math.isfinite(row[name])]


def _edges(values: Sequence[float], bins: int) -> list[float]:
    import numpy as np

    lo, hi = float(min(values)), float(max(values))
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1).round(9).tolist()


def _histogram(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    import numpy as np

    # Values outside the baseline range land in the first/last bin, so counts always sum to len(values).
    clipped = np.clip(np.asarray(values, dtype=float), edges[0], edges[-1])
    counts, _ = np.histogram(clipped, bins=np.asarray(edges))
    return counts.astype(int).tolist()


def _sample(values: Sequence[float]) -> list[float]:
    # Full precision: a rounded copy of a tied value no longer ties with today's, and KS sees a step.
    ordered = sorted(values)
    if len(ordered) <= MAX_SAMPLE:
        return ordered
    step = (len(ordered) - 1) / (MAX_SAMPLE - 1)
    return [ordered[round(i * step)] for i in range(MAX_SAMPLE)]


def _summary(values: Sequence[float]) -> dict[str, float]:
    import numpy as np

    arr = np.asarray(values, dtype=float)
    q = np.quantile(arr, [0.05, 0.5, 0.95])
    return {"count": int(arr.size), "mean": float(arr.mean()), "std": float(arr.std()), "min": float(arr.min()),
            "p05": float(q[0]), "p50": float(q[1]), "p95": float(q[2]), "max": float(arr.max())}


def build_baseline(rows: Sequence[Mapping[str, Any]], *, metric_set: Sequence[str], source: Mapping[str, Any],
                   centroid: Sequence[float] | None = None, bins: int = BINS, now: datetime | None = None) -> dict[str, Any]:
    """Per-metric histogram, summary and sample of ``rows``; metrics no row has are left out (listed as absent)."""
    if not rows:
        raise BaselineError("no scored records to build a baseline from")
    per_metric: dict[str, Any] = {}
    for name in metric_set:
        values = _values(rows, name)
        if not values:
            continue
        edges = _edges(values, bins)
        per_metric[name] = {"summary": _summary(values), "histogram": {"edges": edges, "counts": _histogram(values, edges)},
                            "sample": _sample(values)}
    return {
        "format": BASELINE_FORMAT,
        "metric_set_version": METRIC_SET_VERSION,
        "metric_set": list(metric_set),
        "created_at": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "source": dict(source),
        "records": len(rows),
        "centroid": list(centroid) if centroid is not None else None,
        "metrics": per_metric,
    }


def check_baseline(baseline: Any, metric_set: Sequence[str]) -> None:
    """Refuse a baseline made with another metric set or version, naming the difference."""
    if not isinstance(baseline, dict) or baseline.get("format") != BASELINE_FORMAT:
        raise BaselineError(f"not a monitoring baseline (expected \"format\": \"{BASELINE_FORMAT}\")")
    version = baseline.get("metric_set_version")
    if version != METRIC_SET_VERSION:
        raise BaselineError(f"baseline metric_set_version is {version}, this scorer's is {METRIC_SET_VERSION}: "
                            "rebuild the baseline with `llmops monitor baseline`")
    theirs, ours = set(baseline.get("metric_set") or ()), set(metric_set)
    if theirs != ours:
        parts = []
        if ours - theirs:
            parts.append(f"missing from the baseline: {', '.join(sorted(ours - theirs))}")
        if theirs - ours:
            parts.append(f"not computed now: {', '.join(sorted(theirs - ours))}")
        raise BaselineError("baseline metric set differs (" + "; ".join(parts) + "); score both with the same options")
    for name, entry in (baseline.get("metrics") or {}).items():
        hist = entry.get("histogram", {}) if isinstance(entry, dict) else {}
        if len(hist.get("edges", ())) != len(hist.get("counts", ())) + 1 or not entry.get("sample"):
            raise BaselineError(f"baseline metrics.{name}: histogram edges/counts or sample malformed")


def psi(expected: Sequence[int], actual: Sequence[int], eps: float = 1e-4) -> float:
    """Population stability index of two histograms on the same bins: sum((a-e)·ln(a/e)) over bin shares."""
    e_total, a_total = sum(expected), sum(actual)
    total = 0.0
    for e, a in zip(expected, actual):
        pe = max(e / e_total, eps)
        pa = max(a / a_total, eps)
        total += (pa - pe) * math.log(pa / pe)
    return total


@dataclass
class MetricDrift:
    metric: str
    verdict: str  # drift | ok | insufficient | absent
    psi: float | None
    ks_statistic: float | None
    ks_pvalue: float | None
    baseline_mean: float | None
    current_mean: float | None
    baseline_count: int
    current_count: int
    edges: list[float]
    baseline_counts: list[int]
    current_counts: list[int]


def drift(baseline: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], *, psi_threshold: float = PSI_THRESHOLD,
          ks_pvalue: float = KS_PVALUE, ks_min_statistic: float = KS_MIN_STATISTIC,
          min_records: int = MIN_RECORDS) -> list[MetricDrift]:
    """Drift per baseline metric: ``drift`` when PSI ≥ threshold or KS p < ks_pvalue with statistic ≥ the minimum."""
    from scipy.stats import ks_2samp

    out = []
    for name in baseline["metric_set"]:
        entry = baseline["metrics"].get(name)
        values = _values(rows, name)
        if entry is None:
            out.append(MetricDrift(name, "absent", None, None, None, None, _mean(values), 0, len(values), [], [], []))
            continue
        edges, counts = entry["histogram"]["edges"], entry["histogram"]["counts"]
        base_mean = entry["summary"]["mean"]
        if len(values) < min_records:
            out.append(MetricDrift(name, "insufficient", None, None, None, base_mean, _mean(values), sum(counts),
                                   len(values), edges, counts, _histogram(values, edges) if values else [0] * len(counts)))
            continue
        current = _histogram(values, edges)
        index = psi(counts, current)
        ks = ks_2samp(entry["sample"], values)
        drifted = DriftRule(psi_threshold, ks_min_statistic, ks_pvalue).drifted(index, float(ks.statistic), float(ks.pvalue))
        out.append(MetricDrift(name, "drift" if drifted else "ok", round(index, 6), round(float(ks.statistic), 6),
                               float(ks.pvalue), base_mean, _mean(values), sum(counts), len(values), edges, counts, current))
    return out


def centroid_distance(baseline: Mapping[str, Any], centroid: Sequence[float] | None) -> float | None:
    """Cosine distance of this batch's mean prompt embedding from the baseline's."""
    theirs = baseline.get("centroid")
    if not theirs or not centroid:
        return None
    dot = sum(a * b for a, b in zip(theirs, centroid))
    norm = math.sqrt(sum(a * a for a in theirs)) * math.sqrt(sum(b * b for b in centroid))
    return 1.0 - dot / norm if norm else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def report_json(results: Sequence[MetricDrift], *, centroid: float | None) -> dict[str, Any]:
    rows = [{k: v for k, v in asdict(r).items() if k not in ("edges", "baseline_counts", "current_counts")} for r in results]
    return {"drifted": [r.metric for r in results if r.verdict == "drift"], "centroid_distance": centroid, "metrics": rows}


def _svg(result: MetricDrift, width: int = 360, height: int = 150) -> str:
    if not result.edges:
        return "<p>no histogram (metric absent from the baseline)</p>"
    base_total = max(sum(result.baseline_counts), 1)
    cur_total = max(sum(result.current_counts), 1)
    base = [c / base_total for c in result.baseline_counts]
    cur = [c / cur_total for c in result.current_counts]
    top = max(base + cur + [1e-9])
    n = len(base)
    slot = (width - 40) / n
    bars = []
    for i in range(n):
        x = 30 + i * slot
        for j, (share, colour) in enumerate(((base[i], "#8da0cb"), (cur[i], "#fc8d62"))):
            h = (height - 30) * share / top
            bars.append(f'<rect x="{x + j * slot / 2:.1f}" y="{height - 20 - h:.1f}" width="{slot / 2 - 1:.1f}" '
                        f'height="{h:.1f}" fill="{colour}"><title>{"baseline" if j == 0 else "current"}: '
                        f'{share:.1%} in [{result.edges[i]:.3g}, {result.edges[i + 1]:.3g})</title></rect>')
    labels = (f'<text x="30" y="{height - 5}" font-size="10">{result.edges[0]:.3g}</text>'
              f'<text x="{width - 10}" y="{height - 5}" font-size="10" text-anchor="end">{result.edges[-1]:.3g}</text>'
              f'<line x1="30" y1="{height - 20}" x2="{width - 10}" y2="{height - 20}" stroke="#333"/>')
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">{"".join(bars)}{labels}</svg>'


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def report_html(results: Sequence[MetricDrift], *, baseline: Mapping[str, Any], current_source: str,
                centroid: float | None) -> str:
    """A self-contained page (inline SVG, no scripts or network): one card per metric, drifted ones first."""
    order = {"drift": 0, "insufficient": 1, "ok": 2, "absent": 3}
    cards = []
    for r in sorted(results, key=lambda r: (order[r.verdict], r.metric)):
        colour = {"drift": "#c0392b", "ok": "#27ae60"}.get(r.verdict, "#7f8c8d")
        cards.append(
            f'<div class="card"><h2>{html.escape(r.metric)} <span style="color:{colour}">{r.verdict}</span></h2>'
            f"{_svg(r)}<p>PSI {_fmt(r.psi)} · KS {_fmt(r.ks_statistic)} (p {_fmt(r.ks_pvalue, '.2g')})<br>"
            f"mean {_fmt(r.baseline_mean)} → {_fmt(r.current_mean)} · n {r.baseline_count} → {r.current_count}</p></div>")
    drifted = [r.metric for r in results if r.verdict == "drift"]
    source = html.escape(str(baseline.get("source", {}).get("file", baseline.get("source"))))
    head = (f"<h1>Drift report</h1><p>Baseline: {source} ({baseline.get('records')} records, {html.escape(str(baseline.get('created_at')))}, "
            f"metric set v{baseline.get('metric_set_version')}). Current: {html.escape(current_source)}.</p>"
            f"<p><b>{len(drifted)} of {len(results)} metrics drifted</b>{': ' + html.escape(', '.join(drifted)) if drifted else ''}."
            f"{' Prompt centroid cosine distance: ' + format(centroid, '.4f') + '.' if centroid is not None else ''}</p>"
            '<p><span style="color:#8da0cb">■</span> baseline <span style="color:#fc8d62">■</span> current (share of records per bin)</p>')
    style = ("body{font-family:sans-serif;margin:2em}.grid{display:flex;flex-wrap:wrap;gap:1em}"
             ".card{border:1px solid #ddd;border-radius:6px;padding:.5em 1em}h2{font-size:1em}")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>Drift report</title><style>{style}</style></head>"
            f"<body>{head}<div class=\"grid\">{''.join(cards)}</div></body></html>")
