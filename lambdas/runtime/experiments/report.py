"""An HTML report of a judgement: per metric, each arm's distribution and the difference with its interval (inline SVG)."""

from __future__ import annotations

import html
from typing import Any, Mapping

import numpy as np

from lambdas.runtime.experiments.judge import Verdict, metric_values

COLOURS = ("#0073bb", "#ec7211", "#1d8102", "#8c4fff", "#d13212", "#545b64", "#007d8a", "#b0084d", "#5f6b7a", "#2ea597")


def _histograms(series: dict[str, list[float]], width: int = 520, height: int = 160, bins: int = 20) -> str:
    values = np.concatenate([np.asarray(v, float) for v in series.values() if v]) if any(series.values()) else np.zeros(1)
    low, high = float(values.min()), float(values.max())
    if high == low:
        high = low + 1.0
    edges = np.linspace(low, high, bins + 1)
    shares = {arm: np.histogram(v, bins=edges)[0] / max(len(v), 1) for arm, v in series.items()}
    top = max(float(s.max()) for s in shares.values()) or 1.0
    bar_w = width / bins / max(len(series), 1)
    parts = [f'<svg width="{width}" height="{height + 20}" role="img">']
    for k, (arm, share) in enumerate(shares.items()):
        for i, value in enumerate(share):
            h = value / top * height
            x = i * width / bins + k * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{COLOURS[k % 10]}" opacity="0.8"/>')
    parts.append(f'<text x="0" y="{height + 15}" font-size="11">{low:.3g}</text>')
    parts.append(f'<text x="{width - 40}" y="{height + 15}" font-size="11">{high:.3g}</text></svg>')
    legend = " ".join(f'<span style="color:{COLOURS[k % 10]}">&#9632; {html.escape(arm)} (n={len(series[arm])})</span>'
                      for k, arm in enumerate(series))
    return legend + "<br>" + "".join(parts)


def _interval(c) -> str:
    span = max(abs(c.ci_low), abs(c.ci_high), abs(c.difference), 1e-12) * 1.2
    scale = lambda v: 260 + v / span * 240  # noqa: E731
    return (f'<svg width="520" height="40"><line x1="260" y1="0" x2="260" y2="40" stroke="#999"/>'
            f'<line x1="{scale(c.ci_low):.1f}" y1="20" x2="{scale(c.ci_high):.1f}" y2="20" stroke="#16191f" stroke-width="3"/>'
            f'<circle cx="{scale(c.difference):.1f}" cy="20" r="5" fill="#d13212"/></svg>')


def render_report(verdict: Verdict, arms: Mapping[str, list[Mapping[str, Any]]], metrics: list[str]) -> str:
    rows = []
    for metric in metrics:
        series = {arm: metric_values(records, metric) for arm, records in arms.items()}
        rows.append(f"<h2>{html.escape(metric)}</h2>{_histograms(series)}")
        for c in (c for c in verdict.comparisons if c.metric == metric):
            rows.append(
                f"<p>{html.escape(c.treatment)} − {html.escape(c.control)}: {c.difference:+.4f} "
                f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}], p = {c.p_value:.4g} (Holm {c.p_adjusted:.4g})"
                + (f" — <b>{html.escape(c.better)} better</b>" if c.better else " — no significant difference")
                + f"</p>{_interval(c)}"
            )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in verdict.notes)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Experiment "
        f"{html.escape(verdict.experiment)}</title><style>body{{font-family:system-ui,sans-serif;margin:1.5rem;max-width:60rem}}</style>"
        f"</head><body><h1>Experiment {html.escape(verdict.experiment)}: {html.escape(verdict.status)}"
        + (f" — winner {html.escape(verdict.winner)}" if verdict.winner else "")
        + f"</h1><p>samples: {html.escape(', '.join(f'{a} {n}' for a, n in verdict.samples.items()))}; minimum "
        f"{verdict.min_samples} per arm; alpha {verdict.alpha} (Holm-corrected over {len(verdict.comparisons)} comparisons)</p>"
        f"<ul>{notes}</ul>{''.join(rows)}</body></html>"
    )
