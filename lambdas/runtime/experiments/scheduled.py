"""The judge job in AWS: read the per-record metrics table, split it into each experiment's arms, judge, write the verdict.

The metrics table is JSON lines under ``monitoring/metrics/dt=YYYY-MM-DD/`` in the data bucket
(the Glue table ``interaction_metrics``): one flat row per scored interaction, the metric values
as columns, plus ``experiment``/``arm`` (prompt and embedding arms, set by the query path) and
``variant`` (model arms, from the capture path ``capture/<endpoint>/<variant>/...``). The verdict
goes to ``experiments/verdicts/<experiment>/latest.json`` (the delivery gate reads it; the shape is
``Verdict.to_dict()``, the same as ``llmops experiments judge --json``) and a timestamped copy.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from lambdas.runtime.experiments.judge import Verdict, judge

METRICS_PREFIX = "monitoring/metrics/"
VERDICTS_PREFIX = "experiments/verdicts/"
MODEL_KINDS = ("model-ab", "model-shadow")
# Row fields that describe the interaction; every other numeric field is a metric value.
_DESCRIPTIVE = frozenset({"interaction_id", "source", "use_case", "prompt_id", "prompt_version", "model", "recorded_at",
                          "experiment", "arm", "variant", "endpoint", "dt", "metadata", "metrics"})
MLFLOW_NOTE = ("MLflow: the scheduled job does not log runs (MLflow is not in its bundle); log this judgement with "
               "`llmops experiments judge {name} --env {env} --aws --tracking-uri <tracking server ARN>`")


@dataclass(frozen=True)
class Arm:
    name: str
    variant: str | None = None


@dataclass(frozen=True)
class Experiment:
    """What the stack hands the job per experiment (``EXPERIMENTS`` JSON): no config library at run time."""

    name: str
    kind: str
    arms: tuple[Arm, ...]
    metrics: tuple[str, ...]
    min_samples: int
    alpha: float
    endpoint: str | None = None  # model kinds: the deployed endpoint name (<name_prefix>-<llm name>)
    winner: str | None = None

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> "Experiment":
        try:
            arms = tuple(Arm(str(a["name"]), a.get("variant")) for a in data["arms"])
            return cls(name=name, kind=str(data["kind"]), arms=arms, metrics=tuple(data["metrics"]),
                       min_samples=int(data["min_samples"]), alpha=float(data["alpha"]), endpoint=data.get("endpoint"),
                       winner=data.get("winner"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"EXPERIMENTS.{name}: not an experiment spec ({exc!r})") from None


def parse_experiments(text: str) -> dict[str, Experiment]:
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"EXPERIMENTS: not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("EXPERIMENTS: expected an object of experiments by name")
    return {name: Experiment.from_dict(name, spec) for name, spec in data.items()}


@dataclass
class Rows:
    rows: list[dict[str, Any]] = field(default_factory=list)
    objects: int = 0
    malformed: int = 0


def _lines(body: bytes, key: str) -> Iterator[str]:
    if key.endswith(".gz"):
        body = gzip.decompress(body)
    yield from body.decode("utf-8").splitlines()


def read_metrics(s3: Any, bucket: str, *, today: dt.date, days: int, prefix: str = METRICS_PREFIX) -> Rows:
    """Every row of the last ``days`` daily partitions (today included); malformed lines counted, not fatal."""
    out = Rows()
    paginator = s3.get_paginator("list_objects_v2")
    for back in range(days):
        day = (today - dt.timedelta(days=back)).isoformat()
        for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}dt={day}/"):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/"):
                    continue
                out.objects += 1
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                try:
                    lines = list(_lines(body, key))
                except (UnicodeDecodeError, OSError, EOFError):
                    out.malformed += 1
                    continue
                for line in lines:
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        out.malformed += 1
                        continue
                    if isinstance(row, dict):
                        out.rows.append(row)
                    else:
                        out.malformed += 1
    return out


def _field(row: Mapping[str, Any], name: str) -> Any:
    value = row.get(name)
    if value is None and isinstance(row.get("metadata"), Mapping):
        value = row["metadata"].get(name)
    return value


def as_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A flat table row as the judge's record: numeric columns (and any ``metrics`` object) under ``metrics``."""
    metrics = {k: float(v) for k, v in row.items()
               if k not in _DESCRIPTIVE and isinstance(v, (int, float)) and not isinstance(v, bool)}
    if isinstance(row.get("metrics"), Mapping):
        metrics.update({k: v for k, v in row["metrics"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return {"metrics": metrics, "metadata": {k: row[k] for k in row if k in _DESCRIPTIVE and k not in ("metrics", "metadata")}}


def select_arms(rows: Iterable[Mapping[str, Any]], experiment: Experiment) -> dict[str, list[dict[str, Any]]]:
    """The experiment's records per arm: by ``experiment`` + ``arm``; for model arms also by ``variant`` on its endpoint.

    A row naming another experiment is never counted here, and a row of another endpoint (``endpoint``
    set and different) never counts for a model arm.
    """
    arms: dict[str, list[dict[str, Any]]] = {a.name: [] for a in experiment.arms}
    by_variant = {a.variant: a.name for a in experiment.arms if a.variant} if experiment.kind in MODEL_KINDS else {}
    for row in rows:
        named = _field(row, "experiment")
        if named is not None:
            arm = _field(row, "arm")
            if named == experiment.name and arm in arms:
                arms[arm].append(as_record(row))
            continue
        if by_variant:
            endpoint = _field(row, "endpoint")
            if endpoint is not None and experiment.endpoint and endpoint != experiment.endpoint:
                continue
            arm = by_variant.get(_field(row, "variant"))
            if arm is not None:
                arms[arm].append(as_record(row))
    return arms


def judge_experiment(rows: list[dict[str, Any]], experiment: Experiment, *, environment: str) -> Verdict:
    arms = select_arms(rows, experiment)
    verdict = judge(experiment.name, arms, list(experiment.metrics), control=experiment.arms[0].name,
                    min_samples=experiment.min_samples, alpha=experiment.alpha)
    verdict.notes.append(MLFLOW_NOTE.format(name=experiment.name, env=environment))
    return verdict


def verdict_keys(name: str, when: dt.datetime, prefix: str = VERDICTS_PREFIX) -> tuple[str, str]:
    """(latest, timestamped) keys; the timestamp sorts lexically in time order."""
    stamp = when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")
    return f"{prefix}{name}/latest.json", f"{prefix}{name}/{stamp}.json"


def write_verdict(s3: Any, bucket: str, verdict: Verdict, *, when: dt.datetime, prefix: str = VERDICTS_PREFIX) -> list[str]:
    body = json.dumps(verdict.to_dict(), indent=1, sort_keys=True).encode("utf-8")
    keys = verdict_keys(verdict.experiment, when, prefix)
    # The timestamped copy first: latest.json never points at a judgement whose history is missing.
    for key in reversed(keys):
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return list(keys)


def run(s3: Any, *, bucket: str, experiments: Mapping[str, Experiment], environment: str, lookback_days: int,
        now: dt.datetime, only: str | None = None) -> list[dict[str, Any]]:
    """Judge ``only`` (on demand) or every experiment still running; one summary per experiment."""
    if only is not None and only not in experiments:
        raise ValueError(f"experiment {only!r} is not declared in {environment}; declared: {', '.join(experiments) or 'none'}")
    chosen = [experiments[only]] if only else [e for e in experiments.values() if e.winner is None]
    if not chosen:
        return []
    table = read_metrics(s3, bucket, today=now.date(), days=lookback_days)
    results = []
    for experiment in chosen:
        verdict = judge_experiment(table.rows, experiment, environment=environment)
        if table.malformed:
            verdict.notes.append(f"{table.malformed} malformed metrics line(s) skipped")
        keys = write_verdict(s3, bucket, verdict, when=now)
        results.append({"experiment": experiment.name, "status": verdict.status, "winner": verdict.winner,
                        "samples": verdict.samples, "keys": keys, "objects_read": table.objects})
    return results
