"""The experiment-verdict gate: the latest verdict of each declared experiment must not find the new arm worse.

Contract with the scheduled judge: it writes the JSON ``llmops experiments judge --json`` prints
(``lambdas.runtime.experiments.judge.Verdict.to_dict``) to
``s3://<data bucket>/experiments/verdicts/<experiment>/latest.json``. Its age is the verdict's
``judged_at`` (ISO 8601, when present) or else the object's LastModified. The gate fails, with the
reason, when the verdict is missing, unreadable, stale, about another experiment or control arm,
or when a comparison on a decision metric finds the production (control) arm significantly better.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

VERDICT_PREFIX = "experiments/verdicts/"


def verdict_key(experiment: str) -> str:
    return f"{VERDICT_PREFIX}{experiment}/latest.json"


@dataclass
class GateResult:
    experiment: str
    passed: bool
    reasons: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"experiment {self.experiment}: {'passed' if self.passed else 'stopped'}: " + "; ".join(self.reasons)


def _age_of(verdict: dict[str, Any], last_modified: dt.datetime) -> dt.datetime:
    stamp = verdict.get("judged_at")
    if isinstance(stamp, str):
        try:
            parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
        except ValueError:
            pass
    return last_modified


def check_verdict(
    s3: Any,
    *,
    bucket: str,
    experiment: str,
    control: str,
    metrics: list[str],
    max_age: dt.timedelta,
    now: dt.datetime | None = None,
) -> GateResult:
    """``control``: the production arm (the experiment's first arm); ``metrics``: its decision metrics."""
    now = now or dt.datetime.now(dt.timezone.utc)
    key = verdict_key(experiment)
    where = f"s3://{bucket}/{key}"
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except Exception as exc:  # botocore ClientError: NoSuchKey, AccessDenied
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        return GateResult(experiment, False, [f"no verdict at {where} ({code}); run the judge before promoting"])
    try:
        verdict = json.loads(obj["Body"].read())
    except ValueError as exc:
        return GateResult(experiment, False, [f"{where} is not JSON ({exc})"])
    if not isinstance(verdict, dict) or verdict.get("experiment") != experiment:
        return GateResult(experiment, False, [f"{where} is a verdict of {verdict.get('experiment') if isinstance(verdict, dict) else '?'!r}, not {experiment!r}"])
    judged = _age_of(verdict, obj["LastModified"])
    age = now - judged
    if age > max_age:
        return GateResult(experiment, False, [f"the latest verdict is stale: judged {judged.isoformat()}, "
                                               f"{age.total_seconds() / 3600:.1f} h ago (limit {max_age.total_seconds() / 3600:g} h)"])
    reasons: list[str] = []
    worse = []
    for c in verdict.get("comparisons") or []:
        if c.get("metric") not in metrics:
            continue
        if c.get("control") != control:
            return GateResult(experiment, False, [f"the verdict compares against {c.get('control')!r}, but the production arm is {control!r}"])
        if c.get("significant") and c.get("better") == control:
            worse.append(f"{c['treatment']} is worse than {control} on {c['metric']}: {c['mean_treatment']:.4g} vs "
                         f"{c['mean_control']:.4g} (difference {c['difference']:+.4g}, 95% CI [{c['ci_low']:+.4g}, "
                         f"{c['ci_high']:+.4g}], Holm-adjusted p {c['p_adjusted']:.4g})")
    if worse:
        return GateResult(experiment, False, worse)
    status = verdict.get("status", "?")
    reasons.append(f"verdict {status}" + (f" ({verdict['winner']})" if verdict.get("winner") else "")
                   + f", judged {age.total_seconds() / 3600:.1f} h ago; no arm worse than {control} on " + ", ".join(metrics))
    return GateResult(experiment, True, reasons)
