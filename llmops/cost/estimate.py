"""An itemised cost estimate of one environment, from its config (and its synthesized templates).

Arithmetic over the committed price table (``prices.csv``): every line names its price, unit,
quantity and where the quantity came from, so a reader can check each figure by hand. Standard
library only: synth imports this module to enforce ``cost.max_idle_per_day``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

PRICES_PATH = Path(__file__).resolve().parent / "prices.csv"
FALLBACK_REGION = "us-east-1"
HOURS_PER_DAY = 24
DAYS_PER_MONTH = 30.4  # AWS bills month-priced items by the hour: 730 h / 24

IDLE = "idle_per_day"
PER_QUERIES = "per_1000_queries"
PER_PAGES = "per_1000_pages"
PER_TRAINING_RUN = "per_training_run"
CATEGORIES = (IDLE, PER_QUERIES, PER_PAGES, PER_TRAINING_RUN)

# Assumptions for per-unit figures, each visible in the line that uses it.
QUERY_LAMBDA_SECONDS = 1.5  # rag_query duration excluding the model call
QUERY_LAMBDA_GB = 1.0
QUERY_PROMPT_TOKENS = 1200  # question + top-k chunks + template
QUERY_ANSWER_TOKENS = 250
CHARS_PER_PAGE = 3000
TOKENS_PER_PAGE = 750
COMPREHEND_CALLS_PER_PAGE = 4  # PII, entities, key phrases, language
SPOT_PRICE_FACTOR = 0.3  # SageMaker managed spot: "up to 90%" off; 70% is the usual figure
SERVERLESS_EMBED_SECONDS = 0.05  # one embedding request on serverless inference
SERVERLESS_EMBED_GB = 2.0


class PriceError(KeyError):
    """No price for a (service, item) in the table; the message names it."""


@dataclass(frozen=True)
class Price:
    region: str
    service: str
    item: str
    unit: str
    price: float
    date: str
    source: str


@dataclass
class Line:
    category: str
    item: str
    quantity: float
    unit: str
    unit_price: float
    cost: float
    quantity_from: str
    price_source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Estimate:
    environment: str
    region: str
    lines: list[Line] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def total(self, category: str) -> float:
        return round(sum(line.cost for line in self.lines if line.category == category), 4)

    def largest(self, category: str, n: int = 3) -> list[Line]:
        return sorted((l for l in self.lines if l.category == category), key=lambda l: -l.cost)[:n]

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "region": self.region,
            "totals": {c: self.total(c) for c in CATEGORIES},
            "lines": [line.to_dict() for line in self.lines],
            "warnings": list(self.warnings),
        }


class PriceTable:
    def __init__(self, rows: Iterable[Price]):
        self._rows = {(r.region, r.service, r.item): r for r in rows}

    @classmethod
    def load(cls, path: Path = PRICES_PATH) -> "PriceTable":
        with path.open(encoding="utf-8", newline="") as handle:
            rows = [
                Price(r["region"], r["service"], r["item"], r["unit"], float(r["price_usd"]), r["date"], r["source"])
                for r in csv.DictReader(handle)
            ]
        return cls(rows)

    def get(self, region: str, service: str, item: str, warnings: list[str] | None = None) -> Price:
        row = self._rows.get((region, service, item))
        if row is None:
            row = self._rows.get((FALLBACK_REGION, service, item)) or _hosting_price(service, item)
            if row is None:
                raise PriceError(f"no price for {service} {item!r} in {PRICES_PATH.name}; add a row")
            if warnings is not None and region != FALLBACK_REGION:
                note = f"no {region} prices in {PRICES_PATH.name}: {FALLBACK_REGION} prices used"
                if note not in warnings:
                    warnings.append(note)
        return row


def _hosting_price(service: str, item: str) -> Price | None:
    """SageMaker hosting prices not in the CSV come from the instance facts table (us-east-1)."""
    if service != "sagemaker-hosting":
        return None
    from llmops.instance_types import INSTANCE_TYPES, PRICE_SOURCE

    facts = INSTANCE_TYPES.get(item)
    if facts is None:
        return None
    return Price(FALLBACK_REGION, service, item, "instance-hour", facts.price_per_hour, "2026-12", PRICE_SOURCE)


class _Builder:
    def __init__(self, estimate: Estimate, prices: PriceTable):
        self.estimate, self.prices = estimate, prices

    def add(self, category: str, item: str, service: str, price_item: str, quantity: float, quantity_from: str,
            *, per: float = 1.0) -> None:
        """``quantity`` of ``price_item`` units, times ``per`` (hours per day, days per month...)."""
        if quantity <= 0:
            return
        try:
            price = self.prices.get(self.estimate.region, service, price_item, self.estimate.warnings)
        except PriceError as err:  # an unpriced item is reported, never silently costed at 0
            self.estimate.warnings.append(f"{item}: {err.args[0]}")
            return
        cost = quantity * price.price * per
        self.estimate.lines.append(
            Line(category, item, round(quantity, 6), price.unit, price.price, round(cost, 4), quantity_from, price.source)
        )


ALARM_METRICS = "llmops:alarm-metrics"  # template_counts key: metrics read by all alarms together


def template_counts(cdk_out: Path | None, environment: str) -> dict[str, int]:
    """Resource counts by type over one environment's synthesized templates (empty when absent)."""
    counts: dict[str, int] = {}
    if cdk_out is None:
        return counts
    assembly = Path(cdk_out) / f"assembly-{environment}"
    for template in sorted(assembly.glob("*.template.json")):
        resources = json.loads(template.read_text(encoding="utf-8")).get("Resources", {})
        for resource in resources.values():
            kind = resource.get("Type", "")
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "AWS::CloudWatch::Alarm":
                # CloudWatch bills per metric an alarm reads: a metric-math alarm over three metrics costs three.
                metrics = (resource.get("Properties") or {}).get("Metrics")
                used = sum(1 for m in metrics if "MetricStat" in m) if isinstance(metrics, list) else 1
                counts[ALARM_METRICS] = counts.get(ALARM_METRICS, 0) + max(used, 1)
    return counts


def _interface_endpoint_azs(env: Any) -> int:
    network = env.network
    return int(getattr(network, "interface_endpoint_azs", None) or network.max_azs)


def estimate(env: Any, *, prices: PriceTable | None = None, cdk_out: Path | None = None) -> Estimate:
    """The itemised estimate of ``env`` (an ``llmops.config.EnvironmentConfig``)."""
    prices = prices or PriceTable.load()
    region = env.region or FALLBACK_REGION
    est = Estimate(env.name, region)
    if not env.region:
        est.warnings.append(f"environments.{env.name}.region is not set: {FALLBACK_REGION} prices used")
    b = _Builder(est, prices)
    caps = env.capabilities
    counts = template_counts(cdk_out, env.name)
    where = f"environments.{env.name}"

    # --- idle per day ------------------------------------------------------------------------
    if not env.network.existing_vpc_id:
        endpoints = len(env.network.interface_endpoints)
        azs = _interface_endpoint_azs(env)
        b.add(IDLE, "interface VPC endpoints", "vpc", "interface-endpoint", endpoints * azs,
              f"{where}.network.interface_endpoints ({endpoints}) x AZs ({azs})", per=HOURS_PER_DAY)
    keys = counts.get("AWS::KMS::Key", 1)
    b.add(IDLE, "KMS customer-managed keys", "kms", "customer-managed-key", keys,
          "cdk.out AWS::KMS::Key" if counts else "foundation: one platform key", per=1 / DAYS_PER_MONTH)
    if counts:
        b.add(IDLE, "CloudWatch alarm metrics", "cloudwatch", "alarm", counts.get(ALARM_METRICS, counts.get("AWS::CloudWatch::Alarm", 0)),
              f"cdk.out AWS::CloudWatch::Alarm ({counts.get('AWS::CloudWatch::Alarm', 0)}) x metrics each", per=1 / DAYS_PER_MONTH)
        b.add(IDLE, "CloudWatch dashboards", "cloudwatch", "dashboard", counts.get("AWS::CloudWatch::Dashboard", 0),
              "cdk.out AWS::CloudWatch::Dashboard", per=1 / DAYS_PER_MONTH)
        b.add(IDLE, "Secrets Manager secrets", "secretsmanager", "secret", counts.get("AWS::SecretsManager::Secret", 0),
              "cdk.out AWS::SecretsManager::Secret", per=1 / DAYS_PER_MONTH)
    if caps.rag:
        store = env.vector_store
        if store.backend == "opensearch-serverless":
            # Vector collections idle at 0.5 OCU indexing + 0.5 search, each doubled by standby replicas.
            ocus = 2.0 if store.standby_replicas else 1.0
            b.add(IDLE, "OpenSearch Serverless OCUs (idle minimum)", "opensearch-serverless", "ocu", ocus,
                  f"{where}.vector_store.standby_replicas={store.standby_replicas}", per=HOURS_PER_DAY)
        elif store.backend == "aurora-pgvector":
            aurora = env.rag.aurora
            b.add(IDLE, "Aurora Serverless v2 minimum capacity", "aurora", "serverless-v2-acu", aurora.min_capacity,
                  f"{where}.rag.aurora.min_capacity (0 pauses the idle cluster)", per=HOURS_PER_DAY)
            b.add(IDLE, "Aurora storage (1 GB assumed)", "aurora", "storage", 1, "assumption: 1 GB of chunks",
                  per=1 / DAYS_PER_MONTH)
            if not counts:
                b.add(IDLE, "Secrets Manager secret (database)", "secretsmanager", "secret", 1,
                      f"{where}.vector_store.backend=aurora-pgvector", per=1 / DAYS_PER_MONTH)
        elif store.backend == "kendra" and not env.rag.kendra.index_id:
            item = "developer-edition" if env.rag.kendra.edition == "DEVELOPER_EDITION" else "enterprise-edition"
            b.add(IDLE, f"Kendra index ({env.rag.kendra.edition})", "kendra", item, 1,
                  f"{where}.rag.kendra.edition", per=HOURS_PER_DAY)
    mlflow = getattr(env.fine_tuning, "mlflow", None)  # the managed server, when an environment configures one
    if caps.fine_tuning and mlflow is not None and mlflow.enabled:
        size = env.fine_tuning.mlflow.size.lower()
        b.add(IDLE, f"MLflow tracking server ({env.fine_tuning.mlflow.size})", "sagemaker", f"mlflow-{size}", 1,
              f"{where}.fine_tuning.mlflow", per=HOURS_PER_DAY)
    for line in _inference_lines(env, where):
        b.add(*line)

    # --- per 1,000 queries -------------------------------------------------------------------
    if caps.rag:
        rag = env.rag
        b.add(PER_QUERIES, "API Gateway REST requests", "apigateway", "rest-request", 1000, "1,000 queries")
        b.add(PER_QUERIES, "Lambda requests (rag_query)", "lambda", "request", 1000, "1,000 queries")
        b.add(PER_QUERIES, f"Lambda compute ({QUERY_LAMBDA_GB:g} GB x {QUERY_LAMBDA_SECONDS:g} s assumed)", "lambda",
              "arm-compute", 1000 * QUERY_LAMBDA_GB * QUERY_LAMBDA_SECONDS, "assumption: rag_query duration")
        if rag.llm_provider == "bedrock":
            model = rag.llm_model_id
            b.add(PER_QUERIES, f"Bedrock {model} input tokens", "bedrock", f"{model}-input",
                  QUERY_PROMPT_TOKENS, f"{where}.rag.llm_model_id; {QUERY_PROMPT_TOKENS} tokens/query assumed")
            b.add(PER_QUERIES, f"Bedrock {model} output tokens", "bedrock", f"{model}-output",
                  QUERY_ANSWER_TOKENS, f"{where}.rag.llm_model_id; {QUERY_ANSWER_TOKENS} tokens/answer assumed")
        if rag.embedding_provider == "bedrock":
            model = rag.embedding_model_id
            b.add(PER_QUERIES, f"Bedrock {model} (question embedding)", "bedrock", f"{model}-input", 50,
                  f"{where}.rag.embedding_model_id; 50 tokens/question assumed")
        for line in _inference_query_lines(env, where):
            b.add(*line)

    # --- per 1,000 ingested pages ------------------------------------------------------------
    if caps.data_prep:
        features = set(env.data_prep.textract_features)
        if not features:
            b.add(PER_PAGES, "Textract DetectDocumentText", "textract", "detect-document-text", 1000, "1,000 pages")
        for feature, item in (("TABLES", "analyze-tables"), ("FORMS", "analyze-forms"), ("LAYOUT", "analyze-layout")):
            if feature in features:
                b.add(PER_PAGES, f"Textract {feature}", "textract", item, 1000,
                      f"{where}.data_prep.textract_features")
        units = 1000 * (CHARS_PER_PAGE / 100) * COMPREHEND_CALLS_PER_PAGE
        b.add(PER_PAGES, "Comprehend PII, entities, key phrases, language", "comprehend", "detection-unit", units,
              f"1,000 pages x {CHARS_PER_PAGE} chars / 100 x {COMPREHEND_CALLS_PER_PAGE} calls")
    if caps.rag and env.rag.embedding_provider == "bedrock":
        model = env.rag.embedding_model_id
        b.add(PER_PAGES, f"Bedrock {model} (chunk embeddings)", "bedrock", f"{model}-input", 1000 * TOKENS_PER_PAGE / 1000,
              f"1,000 pages x {TOKENS_PER_PAGE} tokens")

    # --- per training run --------------------------------------------------------------------
    if caps.fine_tuning:
        ft = env.fine_tuning
        instance_type = ft.instance_type or env.instances.training.type
        count = ft.instance_count or env.instances.training.count
        hours = ft.max_runtime_hours
        factor = SPOT_PRICE_FACTOR if ft.spot.enabled else 1.0
        note = " (spot, 70% off assumed)" if ft.spot.enabled else ""
        b.add(PER_TRAINING_RUN, f"training {instance_type} x {count} x {hours} h (max runtime){note}",
              "sagemaker-training", instance_type, count * hours * factor,
              f"{where}.fine_tuning.instance_type/count/max_runtime_hours, spot={ft.spot.enabled}")
        b.add(PER_TRAINING_RUN, "prepare step (1 h assumed)", "sagemaker-training", ft.prepare_instance_type, 1,
              f"{where}.fine_tuning.prepare_instance_type")
        b.add(PER_TRAINING_RUN, "evaluate step (1 h assumed)", "sagemaker-training", ft.evaluation_instance_type, 1,
              f"{where}.fine_tuning.evaluation_instance_type")
    return est


def _inference_lines(env: Any, where: str) -> list[tuple]:
    """Idle cost of the environment's SageMaker endpoints: the instances that stay up with no traffic.

    Quantities are instance-hours per day: the minimum instance count of each variant (target
    tracking: ``scaling.min_capacity``; no scaling: its instance count; shadow: its instance count)
    times 24. Scale-to-zero (inference components), async endpoints (min 0 on backlog) and serverless
    embeddings idle at 0 instances. An endpoint on a stop/start ``schedule`` counts only its
    on-hours (the week's average per day from the two crons) instead of 24.
    """
    if not getattr(env.capabilities, "inference", False):
        return []
    lines: list[tuple] = []
    inf = env.inference
    llm, scaling = inf.llm, inf.llm.scaling
    at = f"{where}.inference.llm"

    def hours(schedule: Any, at: str) -> tuple[float, str]:
        if getattr(schedule, "enabled", False):
            on = schedule.on_hours_per_day()
            return on, f"{at}.schedule on-hours ({on:.2f} h/day: {schedule.start} to {schedule.stop} {schedule.timezone})"
        return HOURS_PER_DAY, "24 h"

    llm_hours, llm_hours_from = hours(llm.schedule, at)
    for v in env.llm_variants():
        if v.shadow:
            count, source = v.instance_count, f"{at}.variants.{v.name}.instance_count (shadow)"
        elif scaling.mode == "scale-to-zero":
            count, source = 0, f"{at}.scaling.mode=scale-to-zero"
        elif llm.async_inference.enabled:
            count, source = 0, f"{at}.async_inference (scales from zero on backlog)"
        elif scaling.mode == "target-tracking":
            count, source = scaling.min_capacity, f"{at}.scaling.min_capacity"
        else:
            count, source = v.instance_count, f"{at}.instance_count (scaling.mode=none)"
        lines.append((IDLE, f"LLM endpoint variant {v.name} ({v.instance_type} x {count})", "sagemaker-hosting",
                      v.instance_type, count * llm_hours, f"{source} x {llm_hours_from}"))
    emb = inf.embeddings
    if emb.enabled and not emb.serverless:
        emb_hours, emb_hours_from = hours(emb.schedule, f"{where}.inference.embeddings")
        lines.append((IDLE, f"embedding endpoint ({emb.instance_type} x {emb.instance_count})", "sagemaker-hosting",
                      emb.instance_type, emb.instance_count * emb_hours, f"{where}.inference.embeddings.instance_count x {emb_hours_from}"))
        from llmops.config import embedding_arms_needing_endpoints

        for arm in embedding_arms_needing_endpoints(env):  # an embedding A/B arm's endpoint, sized like the control's
            lines.append((IDLE, f"embedding A/B arm {arm.name} endpoint ({emb.instance_type} x {emb.instance_count})",
                          "sagemaker-hosting", emb.instance_type, emb.instance_count * HOURS_PER_DAY,
                          f"{where}.experiments (embedding-ab arm {arm.name}) x inference.embeddings.instance_count x 24 h"))
    return lines


def _inference_query_lines(env: Any, where: str) -> list[tuple]:
    return []


def daily_cost_of_instance(instance_type: str, count: int, region: str = FALLBACK_REGION,
                           prices: PriceTable | None = None, service: str = "sagemaker-hosting") -> float:
    """What ``count`` instances of a type cost a day (caps name this figure)."""
    prices = prices or PriceTable.load()
    try:
        return round(prices.get(region, service, instance_type).price * count * HOURS_PER_DAY, 2)
    except PriceError:
        return float("nan")
