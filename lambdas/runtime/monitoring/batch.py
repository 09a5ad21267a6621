"""The scorer in AWS: captured traffic and the RAG interaction log → metrics rows, aggregates, drift, review routing.

Pure logic with its AWS calls on clients handed in, so ``lambdas/monitoring_score/handler.py`` stays
thin and tests run it on moto. Two inputs:

- a data-capture object ``capture/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/<file>.jsonl`` (an
  EventBridge "Object Created" event through SQS): its lines are scored; a malformed line is counted
  (``MalformedLines``) and written with its reason under ``quarantine/monitoring/``;
- interaction-log items (the DynamoDB stream of the interactions table): INSERTs are scored and
  routed; a MODIFY whose new image carries negative ``feedback`` (and the old did not) is routed.

Rows go to ``monitoring/metrics/dt=<date>/<source>-<id>.jsonl`` (the Glue table's columns); the
object name derives from the input (capture key / the batch's interaction ids), so a redelivered
input overwrites its own object. Delivery is at least once: query ``interaction_id`` distinct.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from lambdas.runtime.monitoring import drift as d
from lambdas.runtime.monitoring.capture import Parsed, Rejected, parse_lines
from lambdas.runtime.monitoring.records import validate_record
from lambdas.runtime.monitoring.scoring import metric_set, score_records

NAMESPACE = "LLMOps/Monitoring"
METRICS_PREFIX = "monitoring/metrics/"
BASELINES_PREFIX = "monitoring/baselines/"
QUARANTINE_PREFIX = "quarantine/monitoring/"
CAPTURE_KEY = re.compile(r"^capture/(?P<endpoint>[^/]+)/(?P<variant>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/")
# Aggregated per batch to CloudWatch (Values/Counts, so dashboards can show percentiles).
AGGREGATED = ("toxicity", "prompt_toxicity", "sentiment", "readability", "repetition", "refusal", "jailbreak",
              "injection", "prompt_tokens", "response_tokens", "top_score", "context_count")
# Row keys copied from the record's metadata (the Glue table's columns).
METADATA_COLUMNS = ("prompt_id", "prompt_version", "model", "experiment", "arm", "variant", "embedding_model")


DriftRule = d.DriftRule  # the one rule; the scorer reads its thresholds from the environment (config)


@dataclass(frozen=True)
class UseCases:
    """Which use case (drift alarms, baselines) a record belongs to: by endpoint and variant, else the default."""

    endpoints: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # endpoint -> {variant | "*": use case}
    default: str | None = None

    def of(self, endpoint: str | None, variant: str | None) -> str | None:
        by_variant = self.endpoints.get(endpoint or "", {})
        return by_variant.get(variant or "", by_variant.get("*", self.default))

    @classmethod
    def from_json(cls, text: str | None) -> "UseCases":
        raw = json.loads(text) if text else {}
        return cls(endpoints=raw.get("endpoints", {}), default=raw.get("default"))


@dataclass
class Batch:
    """One scorer input: parsed records, rejected lines, where it came from."""

    source: str  # capture | rag
    name: str  # stable id of the input: the object name derives from it
    parsed: list[Parsed]
    rejected: list[Rejected] = field(default_factory=list)
    raw_lines: dict[int, str] = field(default_factory=dict)  # rejected line number -> its text (quarantine)
    endpoint: str | None = None
    variant: str | None = None
    date: str | None = None  # dt partition; None: each row's own recorded_at date, else today
    origin: str = ""


@dataclass
class Outcome:
    rows: list[dict[str, Any]] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    quarantined: str | None = None
    routed: list[str] = field(default_factory=list)
    drift: dict[str, dict[str, Any]] = field(default_factory=dict)  # use case -> metric -> verdict/psi/ks
    model_metrics_skipped: bool = False  # the embedding model failed: this batch has the model-free metrics only


def stable_id(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:24]


# -- inputs --------------------------------------------------------------------------------------

def capture_batch(key: str, lines: Iterable[bytes | str]) -> Batch:
    """A data-capture object's lines; the key names the endpoint, variant and hour."""
    match = CAPTURE_KEY.match(key)
    if not match:
        raise ValueError(f"object key {key!r} is not capture/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/...")
    raw = list(lines)
    batch = Batch(source="capture", name=stable_id(key), parsed=[], endpoint=match["endpoint"],
                  variant=match["variant"], date=f"{match['y']}-{match['m']}-{match['d']}", origin=key)
    for item in parse_lines(raw):
        if isinstance(item, Parsed):
            batch.parsed.append(item)
        else:
            batch.rejected.append(item)
            text = raw[item.line - 1]
            batch.raw_lines[item.line] = text.decode("utf-8", "backslashreplace") if isinstance(text, bytes) else text
    return batch


@dataclass
class StreamItems:
    """The interaction-log stream records of one invocation, sorted into what the scorer does with them."""

    inserts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (sequence number, record dict)
    feedback: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (sequence number, record dict)
    undecodable: list[tuple[str, str, str]] = field(default_factory=list)  # (sequence number, id, reason)
    skipped: int = 0


def _feedback_rating(image: Mapping[str, Any] | None) -> str | None:
    feedback = (image or {}).get("feedback", {})
    rating = feedback.get("M", {}).get("rating", {}).get("S") if isinstance(feedback, dict) else None
    return rating if rating in ("up", "down") else None


def sort_stream(records: Sequence[Mapping[str, Any]], item_to_record: Any) -> StreamItems:
    """INSERT → scored; MODIFY that turns feedback negative → routed; REMOVE (TTL) and the rest → skipped."""
    out = StreamItems()
    for rec in records:
        ddb = rec.get("dynamodb") or {}
        seq = str(ddb.get("SequenceNumber", ""))
        event = rec.get("eventName")
        new = ddb.get("NewImage")
        if event == "INSERT" and new:
            target = out.inserts
        elif event == "MODIFY" and new and _feedback_rating(new) == "down" and _feedback_rating(ddb.get("OldImage")) != "down":
            target = out.feedback
        else:
            out.skipped += 1
            continue
        item_id = (new.get("interaction_id") or {}).get("S", "") if isinstance(new, dict) else ""
        try:
            record = item_to_record(new)
            validate_record(record)
        except Exception as exc:  # decoding is pure (no I/O): any failure is this item's data, quarantined
            out.undecodable.append((seq, item_id, f"interaction {item_id or '?'}: {exc}"))
            continue
        metadata = dict(record.get("metadata") or {})
        metadata.setdefault("id", item_id)
        metadata.setdefault("source", "rag")
        if "recorded_at" not in metadata and isinstance(new.get("recorded_at"), dict):
            metadata["recorded_at"] = new["recorded_at"].get("S")
        target.append((seq, {**record, "metadata": metadata}))
    return out


def rag_batch(records: Sequence[tuple[str, dict[str, Any]]]) -> Batch:
    parsed = [Parsed(i, validate_record(r), r["metadata"].get("id")) for i, (_, r) in enumerate(records, start=1)]
    ids = sorted(p.record_id or "" for p in parsed)
    return Batch(source="rag", name=stable_id(*ids), parsed=parsed, origin="interactions stream")


# -- rows ----------------------------------------------------------------------------------------

def _latency_ms(metadata: Mapping[str, Any]) -> float | None:
    if isinstance(metadata.get("latency_ms"), (int, float)):
        return float(metadata["latency_ms"])
    parts = [metadata.get(k) for k in ("embedding_ms", "retrieval_ms", "generation_ms")]
    numbers = [float(p) for p in parts if isinstance(p, (int, float)) and not isinstance(p, bool)]
    return sum(numbers) if numbers else None


def _recorded_at(metadata: Mapping[str, Any]) -> str | None:
    for key in ("recorded_at", "time", "inferenceTime"):
        if isinstance(metadata.get(key), str):
            return metadata[key]
    return None


def score_batch(batch: Batch, embedder: Any = None, log: Any = None) -> tuple[list[dict[str, Any]], bool]:
    """Per-record metrics; with ``embedder`` (the index's embedding model) also relevance, hallucination and
    repeatability. A failing embedding model never loses the batch: it is scored model-free and flagged."""
    if embedder is not None:
        try:
            return score_records(batch.parsed, embedder=embedder, use_model=True).rows, True
        except Exception as exc:  # noqa: BLE001 - any endpoint failure; counted as ModelMetricsSkipped and alarmed
            if log:
                log(f"embedding model failed, {batch.name} scored without the model metrics: {type(exc).__name__}: {exc}")
    return score_records(batch.parsed, use_model=False).rows, embedder is None


def build_rows(batch: Batch, use_cases: UseCases, embedder: Any = None, log: Any = None,
               outcome: "Outcome | None" = None) -> list[dict[str, Any]]:
    """Metrics rows in the Glue table's shape (the model metrics when an embedder is given and answers)."""
    scored, complete = score_batch(batch, embedder, log)
    if outcome is not None:
        outcome.model_metrics_skipped = not complete
    rows = []
    for item, metrics in zip(batch.parsed, scored):
        meta = item.record.metadata
        variant = meta.get("variant") if isinstance(meta.get("variant"), str) else batch.variant
        row: dict[str, Any] = {
            "interaction_id": item.record_id or f"{batch.name}:{item.line}",
            "source": batch.source, "endpoint": batch.endpoint,
            "use_case": use_cases.of(batch.endpoint, variant), "recorded_at": _recorded_at(meta),
            "latency_ms": _latency_ms(meta),
        }
        for key in METADATA_COLUMNS:
            value = meta.get(key)
            row[key] = value if isinstance(value, (str, int)) and not isinstance(value, bool) else None
        row["variant"] = variant
        row.update({k: v for k, v in metrics.items() if k not in ("line", "id")})
        rows.append({k: v for k, v in row.items() if v is not None and not (isinstance(v, float) and not math.isfinite(v))})
    return rows


def _dt(row: Mapping[str, Any], batch: Batch, now: datetime) -> str:
    if batch.date:
        return batch.date
    stamp = row.get("recorded_at")
    if isinstance(stamp, str) and re.match(r"^\d{4}-\d{2}-\d{2}", stamp):
        return stamp[:10]
    return now.strftime("%Y-%m-%d")


def write_rows(s3: Any, bucket: str, batch: Batch, rows: Sequence[Mapping[str, Any]], now: datetime) -> list[str]:
    by_date: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by_date[_dt(row, batch, now)].append(row)
    keys = []
    for date, group in sorted(by_date.items()):
        key = f"{METRICS_PREFIX}dt={date}/{batch.source}-{batch.name}.jsonl"
        body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in group).encode("utf-8")
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")
        keys.append(key)
    return keys


def quarantine(s3: Any, bucket: str, batch: Batch, rejected: Sequence[tuple[int | str, str, str]]) -> str | None:
    """Rejected lines (number, reason, text) as JSON lines under ``quarantine/monitoring/<source>/``."""
    if not rejected:
        return None
    key = f"{QUARANTINE_PREFIX}{batch.source}/{batch.name}.jsonl"
    body = "".join(json.dumps({"origin": batch.origin, "line": n, "reason": reason, "text": text[:100_000]},
                              ensure_ascii=False) + "\n" for n, reason, text in rejected).encode("utf-8")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")
    return key


# -- CloudWatch ----------------------------------------------------------------------------------

def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def aggregate_data(rows: Sequence[Mapping[str, Any]], source: str, now: datetime) -> list[dict[str, Any]]:
    """MetricData per (use case, metric): every value of the batch as Values/Counts (percentiles work)."""
    groups: dict[tuple[str, str], dict[float, int]] = defaultdict(lambda: defaultdict(int))
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        use_case = row.get("use_case") or "none"
        counts[use_case] += 1
        for name in AGGREGATED:
            value = row.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                groups[(use_case, name)][round(float(value), 4)] += 1
    data = []
    for use_case, n in counts.items():
        data.append({"MetricName": "RecordsScored", "Dimensions": [{"Name": "UseCase", "Value": use_case},
                     {"Name": "Source", "Value": source}], "Timestamp": now, "Value": n, "Unit": "Count"})
    for (use_case, name), values in sorted(groups.items()):
        dims = [{"Name": "UseCase", "Value": use_case}, {"Name": "Source", "Value": source}]
        pairs = sorted(values.items())
        for chunk in _chunks(pairs, 150):  # PutMetricData takes at most 150 distinct values per datum
            data.append({"MetricName": name, "Dimensions": dims, "Timestamp": now,
                         "Values": [v for v, _ in chunk], "Counts": [float(c) for _, c in chunk], "Unit": "None"})
    return data


def count_datum(name: str, value: float, source: str, now: datetime) -> dict[str, Any]:
    return {"MetricName": name, "Dimensions": [{"Name": "Source", "Value": source}], "Timestamp": now,
            "Value": float(value), "Unit": "Count"}


def put_metric_data(cloudwatch: Any, data: list[dict[str, Any]]) -> None:
    for chunk in _chunks(data, 500):  # PutMetricData takes at most 1,000 metrics per call
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=chunk)


# -- drift ---------------------------------------------------------------------------------------

def latest_baseline(s3: Any, bucket: str, use_case: str) -> tuple[str, dict[str, Any]] | None:
    """The highest ``v<N>.json`` under ``monitoring/baselines/<use case>/`` (None when there is none)."""
    prefix = f"{BASELINES_PREFIX}{use_case}/"
    best: tuple[int, str] | None = None
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            match = re.fullmatch(re.escape(prefix) + r"v(\d+)\.json", obj["Key"])
            if match and (best is None or int(match[1]) > best[0]):
                best = (int(match[1]), obj["Key"])
    if best is None:
        return None
    return best[1], json.loads(s3.get_object(Bucket=bucket, Key=best[1])["Body"].read())


def usable_baseline(baseline: Any, metrics: Sequence[str]) -> dict[str, Any]:
    """The baseline restricted to ``metrics`` that this scorer computes (one built with the model has more).

    Refused (BaselineError, naming the difference) for another metric-set version or a baseline
    lacking one of the model-free metrics.
    """
    if not isinstance(baseline, Mapping) or baseline.get("format") != d.BASELINE_FORMAT:
        raise d.BaselineError(f"not a monitoring baseline (expected \"format\": \"{d.BASELINE_FORMAT}\")")
    ours = metric_set(False)
    missing = [m for m in ours if m not in (baseline.get("metric_set") or ())]
    if missing:
        raise d.BaselineError(f"baseline metric set lacks {', '.join(missing)}; build it with `llmops monitor baseline`")
    d.check_baseline({**baseline, "metric_set": ours}, ours)  # version, histogram and sample shapes
    return {**baseline, "metric_set": [m for m in metrics if m in ours]}


def drift_data(use_case: str, results: Sequence[d.MetricDrift], now: datetime) -> list[dict[str, Any]]:
    """``Drift`` with UseCase/Metric/Statistic = Rule (the verdict the alarms read), PSI, KS and KSPValue."""
    data = []
    for r in results:
        if r.verdict not in ("drift", "ok"):
            continue  # insufficient/absent: no verdict, no datapoint (the alarm treats missing as fine)
        for statistic, value in (("Rule", 1.0 if r.verdict == "drift" else 0.0), ("PSI", r.psi),
                                 ("KS", r.ks_statistic), ("KSPValue", r.ks_pvalue)):
            data.append({"MetricName": "Drift", "Timestamp": now, "Value": float(value), "Unit": "None",
                         "Dimensions": [{"Name": "UseCase", "Value": use_case}, {"Name": "Metric", "Value": r.metric},
                                        {"Name": "Statistic", "Value": statistic}]})
    return data


# -- routing -------------------------------------------------------------------------------------

def review_message(record: Mapping[str, Any], reasons: Sequence[str]) -> dict[str, Any]:
    """The human-review queue's message (``ReviewInput``), fields cut to what A2I input allows."""
    from lambdas.runtime.human_review.model import MAX_TEXT, ReviewInput

    meta = record.get("metadata") or {}
    version = meta.get("prompt_version")
    message = ReviewInput(
        interaction_id=str(meta["id"]), question=(record.get("question") or record["prompt"])[:MAX_TEXT] or "(empty)",
        answer=record["response"][:MAX_TEXT],
        contexts=tuple({"text": c[:4_000]} for c in (record.get("contexts") or [])[:20]),
        prompt_id=str(meta.get("prompt_id") or ""), prompt_version=version if isinstance(version, int) else None,
        model=str(meta.get("model") or ""), reasons=tuple(reasons),
    )
    return message.model_dump(mode="json")


def route(sqs: Any, queue_url: str, items: Sequence[tuple[Mapping[str, Any], Sequence[str]]]) -> list[str]:
    """Send each (record, reasons) to review; the loop name derives from the id, so a resend starts nothing new."""
    sent = []
    entries = [{"Id": str(i), "MessageBody": json.dumps(review_message(r, why), ensure_ascii=False)}
               for i, (r, why) in enumerate(items)]
    ids = [str(r["metadata"]["id"]) for r, _ in items]
    for chunk in _chunks(entries, 10):
        answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=chunk)
        if answer.get("Failed"):
            raise RuntimeError(f"review queue refused {len(answer['Failed'])} message(s): {answer['Failed'][0]}")
        sent += [ids[int(e["Id"])] for e in chunk]
    return sent


def routing_reasons(record: Mapping[str, Any], row: Mapping[str, Any], rules: Any, feedback: str | None = None) -> list[str]:
    from lambdas.runtime.human_review.routing import review_reasons

    meta = record.get("metadata") or {}
    flags = meta.get("review")
    # The query path's reasons (same rules on its cheap metrics) first, then the scorer's, each once.
    reasons = [f for f in flags if isinstance(f, str)] if isinstance(flags, list) else []
    ours = review_reasons(str(meta["id"]), row, rules, feedback=feedback)
    if reasons:
        ours = [r for r in ours if not r.startswith("sampled")]  # already chosen: no sampling note
    return list(dict.fromkeys(reasons + ours))


# -- the whole step --------------------------------------------------------------------------------

@dataclass
class Settings:
    bucket: str
    use_cases: UseCases
    rule: DriftRule
    drift_metrics: tuple[str, ...]
    review_queue_url: str | None = None
    routing: Any = None  # human_review.routing.RoutingRules
    embedder: Any = None  # the index's embedding model (rag.embedders); None: model-free metrics only

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        routing = None
        if env.get("REVIEW_QUEUE_URL"):
            from lambdas.runtime.human_review.routing import ROUTING_ENV, rules_from_json

            routing = rules_from_json(env.get(ROUTING_ENV) or "{}")  # the query function's same rules
        embedder = None
        if env.get("EMBEDDING_PROVIDER"):
            from lambdas.runtime.rag.embedders import embedder_from_env

            embedder = embedder_from_env(env)  # the model the index is built with (the platform's endpoint)
        return cls(bucket=env["DATA_BUCKET"], use_cases=UseCases.from_json(env.get("USE_CASES")),
                   rule=DriftRule.from_env(env), drift_metrics=tuple(json.loads(env.get("DRIFT_METRICS") or "[]")),
                   review_queue_url=env.get("REVIEW_QUEUE_URL") or None, routing=routing, embedder=embedder)


def process(batch: Batch, settings: Settings, *, s3: Any, cloudwatch: Any, sqs: Any = None,
            now: datetime | None = None, baselines: Any = None, log: Any = None) -> Outcome:
    """Score, quarantine, route, publish and write one batch. ``baselines(use_case)`` may cache ``latest_baseline``."""
    now = now or datetime.now(timezone.utc)
    out = Outcome()
    out.rows = build_rows(batch, settings.use_cases, settings.embedder, log, out)
    rejected = [(r.line, r.reason, batch.raw_lines.get(r.line, "")) for r in batch.rejected]
    out.quarantined = quarantine(s3, settings.bucket, batch, rejected)
    if settings.review_queue_url and settings.routing is not None and batch.source == "rag" and sqs is not None:
        records = {p.record_id: p for p in batch.parsed}
        todo = []
        for row in out.rows:
            item = records.get(row["interaction_id"])
            if item is None:
                continue
            record = {"prompt": item.record.prompt, "response": item.record.response, "question": item.record.question,
                      "contexts": list(item.record.contexts or ()), "metadata": dict(item.record.metadata)}
            reasons = routing_reasons(record, row, settings.routing)
            if reasons:
                todo.append((record, reasons))
        out.routed = route(sqs, settings.review_queue_url, todo)
    data = aggregate_data(out.rows, batch.source, now)
    if batch.rejected:
        data.append(count_datum("MalformedLines", len(batch.rejected), batch.source, now))
    if out.routed:
        data.append(count_datum("RoutedToReview", len(out.routed), batch.source, now))
    if out.model_metrics_skipped and batch.parsed:
        data.append(count_datum("ModelMetricsSkipped", len(batch.parsed), batch.source, now))
    by_use_case: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in out.rows:
        if row.get("use_case"):
            by_use_case[row["use_case"]].append(row)
    for use_case, rows in sorted(by_use_case.items()):
        found = (baselines or (lambda u: latest_baseline(s3, settings.bucket, u)))(use_case)
        if found is None:
            continue
        key, baseline = found
        try:
            view = usable_baseline(baseline, settings.drift_metrics)
        except d.BaselineError as exc:
            data.append(count_datum("BaselineRefused", 1, batch.source, now))
            if log:
                log(f"baseline {key} not used for {use_case}: {exc}")
            continue
        results = d.drift(view, rows, **settings.rule.options())
        out.drift[use_case] = {r.metric: {"verdict": r.verdict, "psi": r.psi, "ks": r.ks_statistic, "ks_pvalue": r.ks_pvalue}
                               for r in results}
        data += drift_data(use_case, results, now)
    put_metric_data(cloudwatch, data)
    # Last: a failure above leaves no object behind, so a retry writes each row once.
    out.objects = write_rows(s3, settings.bucket, batch, out.rows, now)
    return out


def route_feedback(items: Sequence[tuple[str, Mapping[str, Any]]], settings: Settings, *, sqs: Any) -> list[str]:
    """Negative feedback on an answered interaction → review (A2I's loop name dedupes an earlier routing)."""
    if not items or not settings.review_queue_url or settings.routing is None or not settings.routing.negative_feedback:
        return []
    todo = [(record, routing_reasons(record, {}, settings.routing, feedback="down")) for _, record in items]
    return route(sqs, settings.review_queue_url, [(r, why) for r, why in todo if why])
