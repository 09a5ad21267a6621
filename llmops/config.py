"""Typed, validated environment configuration.

The platform team edits ``config/environments.yaml``; this module loads it, deep-merges each
environment over ``defaults`` and validates the result. A wrong value raises ``ConfigError``
whose message names the field (``environments.prod.vector_store.backend``) and the allowed
values, so synth fails at once instead of deep inside CloudFormation.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Owned by the fine-tuning profiles (stdlib only): config validates against the same tuples.
from pipelines.profiles import FINE_TUNING_GPU_FAMILIES, FINE_TUNING_TRAINIUM_FAMILIES

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "config" / "environments.yaml"

# Lower-case names accepted in network.interface_endpoints -> ec2.InterfaceVpcEndpointAwsService member.
INTERFACE_ENDPOINTS: dict[str, str] = {
    "sagemaker_api": "SAGEMAKER_API",
    "sagemaker_runtime": "SAGEMAKER_RUNTIME",
    "sts": "STS",
    "cloudwatch_logs": "CLOUDWATCH_LOGS",
    "cloudwatch_monitoring": "CLOUDWATCH_MONITORING",
    "kms": "KMS",
    "ecr": "ECR",
    "ecr_docker": "ECR_DOCKER",
    "secrets_manager": "SECRETS_MANAGER",
    "sqs": "SQS",
    "sns": "SNS",
    "ssm": "SSM",
    "lambda": "LAMBDA_",  # jsii renames the member (lambda is a Python keyword)
    "step_functions": "STEP_FUNCTIONS",
    "eventbridge": "EVENTBRIDGE",
    "textract": "TEXTRACT",
    "comprehend": "COMPREHEND",
    "bedrock_runtime": "BEDROCK_RUNTIME",
    "xray": "XRAY",
    "rds_data": "RDS_DATA",
    "kendra": "KENDRA",  # the RAG query function's Retrieve calls with the kendra backend
}

# SageMaker instance families the platform has profiles for; anything else is a typo or untested.
TRAINING_FAMILIES = ("g5", "g6", "g6e", "p4d", "p4de", "p5", "trn1", "trn1n", "m5", "c5")
INFERENCE_FAMILIES = ("g5", "g6", "g6e", "p4d", "p5", "inf2", "m5", "c5")
_INSTANCE_RE = re.compile(r"^ml\.([a-z0-9]+)\.([0-9]*x?large|xlarge|[0-9]+xlarge)$")


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the field."""


class _Model(BaseModel):
    # Unknown keys are errors: a misspelt key must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkConfig(_Model):
    cidr: str = "10.40.0.0/16"
    max_azs: int = Field(2, ge=1, le=6)
    existing_vpc_id: str | None = None
    flow_log_retention_days: int = Field(90, ge=1)
    interface_endpoints: tuple[str, ...] = ()
    # Interface endpoints in the first N AZs only (None: every AZ). Each endpoint costs per AZ-hour;
    # one AZ trades endpoint availability for cost (dev).
    interface_endpoint_azs: int | None = Field(None, ge=1, le=6)
    # "all": every function runs in the isolated subnets. "when-needed": only functions that reach a
    # VPC resource (the Aurora cluster) do; the rest call AWS APIs over Lambda's own network, so the
    # environment needs no interface endpoints for them (dev: trades network isolation for cost).
    functions_in_vpc: Literal["all", "when-needed"] = "all"

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        import ipaddress

        try:
            net = ipaddress.IPv4Network(value)
        except ValueError as exc:
            raise ValueError(f"not an IPv4 CIDR block: {value!r}") from exc
        if not 16 <= net.prefixlen <= 24:
            raise ValueError(f"prefix length must be /16 to /24, got /{net.prefixlen}")
        return value

    @field_validator("existing_vpc_id")
    @classmethod
    def _vpc_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"vpc-[0-9a-f]{8,17}", value):
            raise ValueError(f"must look like vpc-0123456789abcdef0, got {value!r}")
        return value

    @field_validator("interface_endpoints")
    @classmethod
    def _endpoints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(INTERFACE_ENDPOINTS))
        if unknown:
            raise ValueError(f"unknown endpoint(s) {unknown}; allowed: {sorted(INTERFACE_ENDPOINTS)}")
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _endpoint_azs(self) -> "NetworkConfig":
        if self.interface_endpoint_azs is not None and self.interface_endpoint_azs > self.max_azs:
            raise ValueError(
                f"interface_endpoint_azs ({self.interface_endpoint_azs}) must not exceed max_azs ({self.max_azs})"
            )
        return self


class CapabilitiesConfig(_Model):
    data_prep: bool = True
    prompt_catalog: bool = True
    rag: bool = True
    fine_tuning: bool = True
    human_review: bool = False  # needs a workteam: data_prep.workteam or human_review.workteam_arn
    monitoring: bool = True


class VectorStoreConfig(_Model):
    backend: Literal["opensearch-serverless", "aurora-pgvector", "kendra"] = "opensearch-serverless"
    dimension: int = Field(384, ge=2, le=16000)
    space: Literal["cosinesimil", "l2", "innerproduct"] = "cosinesimil"
    standby_replicas: bool = True


class AossConfig(_Model):
    public_access: bool = False  # true exposes the collection endpoint to the internet (still IAM-signed)


class AuroraConfig(_Model):
    min_capacity: float = Field(0, ge=0, le=256)  # 0 lets an idle cluster pause (no compute charge)
    max_capacity: float = Field(4, ge=1, le=256)
    auto_pause_minutes: int = Field(10, ge=5, le=1440)
    rotation_days: int = Field(30, ge=1, le=365)


class KendraConfig(_Model):
    index_id: str | None = None  # an existing index to use; None creates one when the backend is kendra
    edition: Literal["DEVELOPER_EDITION", "ENTERPRISE_EDITION"] = "DEVELOPER_EDITION"

    @field_validator("index_id")
    @classmethod
    def _index_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9-]{35}", value):
            raise ValueError(f"must be a 36-character Kendra index id, got {value!r}")
        return value


class RagConfig(_Model):
    """Models, chunking and limits of the RAG capability (the store itself is ``vector_store``)."""

    embedding_provider: Literal["sagemaker", "bedrock"] = "sagemaker"
    embedding_endpoint_name: str | None = None  # sagemaker: default "<name_prefix>-embeddings"
    embedding_model_id: str = "amazon.titan-embed-text-v2:0"  # bedrock
    llm_provider: Literal["sagemaker", "bedrock"] = "sagemaker"
    llm_endpoint_name: str | None = None  # sagemaker: default "<name_prefix>-llm"
    llm_model_id: str = "amazon.nova-lite-v1:0"  # bedrock
    llm_container: Literal["tgi", "djl-lmi"] = "tgi"
    chunk_size: int = Field(200, ge=32, le=8192)  # tokens
    chunk_overlap: int = Field(40, ge=0, le=4096)
    top_k: int = Field(4, ge=1, le=50)
    max_question_chars: int = Field(2000, ge=16, le=100_000)
    prompt_id: str = "rag-answer"
    prompt_alias: str = "prod"
    aoss: AossConfig = AossConfig()
    aurora: AuroraConfig = AuroraConfig()
    kendra: KendraConfig = KendraConfig()

    @field_validator("embedding_endpoint_name", "llm_endpoint_name")
    @classmethod
    def _endpoint_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", value):
            raise ValueError(f"not a SageMaker endpoint name (1-63 of a-z, A-Z, 0-9, '-'), got {value!r}")
        return value

    @model_validator(mode="after")
    def _chunking(self) -> "RagConfig":
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})")
        if self.aurora.min_capacity > self.aurora.max_capacity:
            raise ValueError("aurora.min_capacity must not exceed aurora.max_capacity")
        return self


class InstanceConfig(_Model):
    type: str
    count: int = Field(1, ge=1, le=64)


def _check_instance(value: InstanceConfig, families: tuple[str, ...]) -> InstanceConfig:
    match = _INSTANCE_RE.match(value.type)
    if not match or match.group(1) not in families:
        raise ValueError(
            f"type {value.type!r} is not a supported instance type; "
            f"allowed families: {', '.join('ml.' + f + '.*' for f in families)}"
        )
    return value


class InstancesConfig(_Model):
    training: InstanceConfig = InstanceConfig(type="ml.g5.2xlarge")
    inference: InstanceConfig = InstanceConfig(type="ml.g5.2xlarge")

    @field_validator("training")
    @classmethod
    def _training(cls, value: InstanceConfig) -> InstanceConfig:
        return _check_instance(value, TRAINING_FAMILIES)

    @field_validator("inference")
    @classmethod
    def _inference(cls, value: InstanceConfig) -> InstanceConfig:
        return _check_instance(value, INFERENCE_FAMILIES)




class LoraSettings(_Model):
    rank: int = Field(16, ge=1, le=1024)
    alpha: int = Field(32, ge=1, le=4096)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)


class QualityThresholds(_Model):
    """Minimums (and a perplexity maximum) a tuned model must meet to be registered; 0 turns one off."""

    min_rouge_l: float = Field(0.0, ge=0.0, le=1.0)
    min_bleu: float = Field(0.0, ge=0.0, le=100.0)
    min_exact_match: float = Field(0.0, ge=0.0, le=1.0)
    min_token_f1: float = Field(0.0, ge=0.0, le=1.0)
    min_accuracy: float = Field(0.0, ge=0.0, le=1.0)
    min_f1: float = Field(0.0, ge=0.0, le=1.0)
    max_perplexity: float = Field(0.0, ge=0.0)

    @field_validator("max_perplexity")
    @classmethod
    def _perplexity(cls, value: float) -> float:
        if 0 < value < 1:
            raise ValueError(f"perplexity is at least 1, so a maximum of {value} can never pass (0 turns it off)")
        return value


class SpotSettings(_Model):
    enabled: bool = False
    max_wait_hours: int = Field(48, ge=1, le=672)


class MlflowSettings(_Model):
    enabled: bool = False
    size: Literal["Small", "Medium", "Large"] = "Small"


class FineTuningUseCase(_Model):
    dataset: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    base_model: str | None = None
    description: str = ""


class FineTuningConfig(_Model):
    """SageMaker Pipelines for fine-tuning: one pipeline and model package group per use case."""

    use_cases: dict[str, FineTuningUseCase] = {"assistant": FineTuningUseCase(dataset="assistant")}
    # Hugging Face model id; its weights are read from s3://<artifacts>/base-models/<id>/ (no internet in the VPC).
    base_model: str = Field("meta-llama/Llama-3.2-1B-Instruct", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
    strategy: Literal["full", "lora", "qlora"] = "lora"
    epochs: int = Field(3, ge=1, le=100)
    learning_rate: float = Field(2e-4, gt=0.0, le=1.0)
    lora: LoraSettings = LoraSettings()
    max_length: int = Field(2048, ge=16, le=131072)
    instance_type: str | None = None  # default: instances.training.type
    instance_count: int | None = Field(None, ge=1, le=64)  # default: instances.training.count
    distribution: Literal["ddp", "fsdp"] = "ddp"
    prepare_instance_type: str = "ml.m5.xlarge"
    evaluation_instance_type: str = "ml.g5.2xlarge"
    volume_size_gb: int = Field(200, ge=30, le=16384)
    max_runtime_hours: int = Field(24, ge=1, le=672)
    spot: SpotSettings = SpotSettings()
    thresholds: QualityThresholds = QualityThresholds()
    mlflow: MlflowSettings = MlflowSettings()
    serving_image: Literal["tgi", "djl-lmi"] = "tgi"
    # Accounts (e.g. staging, prod) allowed to read approved model packages of this environment.
    reader_accounts: tuple[str, ...] = ()

    @field_validator("use_cases")
    @classmethod
    def _use_cases(cls, value: dict[str, FineTuningUseCase]) -> dict[str, FineTuningUseCase]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9-]{1,23}", name):
                raise ValueError(f"use case name {name!r} must be 2-24 characters of a-z, 0-9 and '-'")
        return value

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str | None) -> str | None:
        if value is not None:
            _check_instance(InstanceConfig(type=value), FINE_TUNING_GPU_FAMILIES + FINE_TUNING_TRAINIUM_FAMILIES)
        return value

    @field_validator("evaluation_instance_type")
    @classmethod
    def _evaluation_type(cls, value: str) -> str:
        _check_instance(InstanceConfig(type=value), FINE_TUNING_GPU_FAMILIES)
        return value

    @field_validator("prepare_instance_type")
    @classmethod
    def _prepare_type(cls, value: str) -> str:
        _check_instance(InstanceConfig(type=value), ("m5", "m6i", "m7i", "c5", "c6i", "c7i", "r5"))
        return value

    @field_validator("reader_accounts")
    @classmethod
    def _readers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for account in value:
            if not re.fullmatch(r"\d{12}", str(account)):
                raise ValueError(f"must be 12-digit AWS account ids (quote them in YAML), got {account!r}")
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _strategy_hardware(self) -> "FineTuningConfig":
        if self.strategy == "qlora" and self.instance_type and self.instance_type.split(".")[1].startswith("trn"):
            raise ValueError("strategy: qlora needs CUDA GPUs (bitsandbytes); use lora or full on Trainium")
        return self


# Choices that cost a lot per day and are refused unless ``cost.allow`` names them.
EXPENSIVE_FAMILIES = ("p4d", "p4de", "p5", "p5e", "p5en")
EXPENSIVE_TYPES = ("ml.trn1.32xlarge", "ml.trn1n.32xlarge")
COST_ALLOWANCES = EXPENSIVE_FAMILIES + EXPENSIVE_TYPES + ("kendra", "high-instance-count")


class CostConfig(_Model):
    """Budgets and caps: what the environment may cost (estimates come from ``llmops.cost``)."""

    monthly_budget: float | None = Field(None, gt=0)  # USD; an AWS Budgets budget with alerts at 80% and 100%
    budget_emails: tuple[str, ...] = ()  # budget alert recipients (besides the alert topic, when there is one)
    max_idle_per_day: float | None = Field(None, gt=0)  # USD; synth fails when the idle estimate exceeds it
    max_instance_count: int = Field(4, ge=1, le=64)  # more instances of one kind needs "high-instance-count"
    allow: tuple[str, ...] = ()

    @field_validator("allow")
    @classmethod
    def _allow(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(COST_ALLOWANCES))
        if unknown:
            raise ValueError(f"unknown allowance(s) {unknown}; allowed: {', '.join(COST_ALLOWANCES)}")
        return tuple(dict.fromkeys(value))

    @field_validator("budget_emails")
    @classmethod
    def _emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for email in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
                raise ValueError(f"not an e-mail address: {email!r}")
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _recipients(self) -> "CostConfig":
        if self.monthly_budget and not self.budget_emails:
            raise ValueError("budget_emails: a monthly_budget needs at least one e-mail recipient for its alerts")
        return self


class HumanReviewRouting(_Model):
    sample_rate: float = Field(0.02, ge=0.0, le=1.0)  # share of all answers reviewed regardless of metrics
    min_relevance: float | None = Field(0.3, ge=0.0, le=1.0)
    max_hallucination: float | None = Field(0.5, ge=0.0, le=1.0)
    max_toxicity: float | None = Field(0.5, ge=0.0, le=1.0)
    refusal: bool = True
    min_top_score: float | None = Field(0.2, ge=-1.0, le=1.0)
    negative_feedback: bool = True


class HumanReviewConfig(_Model):
    """SageMaker A2I review of LLM answers: task settings, routing and where reviewed answers go."""

    workteam_arn: str | None = None  # default: the data-prep workteam
    workers_per_task: int = Field(1, ge=1, le=3)
    task_time_limit_seconds: int = Field(3600, ge=30, le=28800)
    task_availability_seconds: int = Field(86400, ge=60, le=864000)
    task_title: str = Field("Review an LLM answer", min_length=1, max_length=128)
    instructions: str = Field("Rate how well the passages support the answer; correct it if you can.", max_length=2000)
    dataset: str = Field("reviewed-answers", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")  # corrected answers -> datasets/<name>/
    routing: HumanReviewRouting = HumanReviewRouting()

    @field_validator("workteam_arn")
    @classmethod
    def _workteam(cls, value: str | None) -> str | None:
        pattern = r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:workteam/private-crowd/[A-Za-z0-9-]{1,63}"
        if value is not None and not re.fullmatch(pattern, value):
            raise ValueError(f"must be a private workteam ARN (arn:aws:sagemaker:REGION:ACCOUNT:workteam/private-crowd/NAME), got {value!r}")
        return value


# Metrics an experiment may be decided on: the monitoring library's scores plus latency and cost.
EXPERIMENT_METRICS = (
    "relevance", "hallucination", "toxicity", "sentiment", "readability", "repetition", "refusal", "jailbreak",
    "injection", "prompt_tokens", "response_tokens", "top_score", "human_rating", "latency_ms", "cost_per_request",
)
# Output dimensions of the embedding models an embedding A/B may use.
EMBEDDING_DIMENSIONS = {
    "sentence-transformers/all-MiniLM-L6-v2": (384,), "BAAI/bge-small-en-v1.5": (384,), "BAAI/bge-base-en-v1.5": (768,),
    "BAAI/bge-large-en-v1.5": (1024,), "intfloat/e5-large-v2": (1024,), "amazon.titan-embed-text-v2:0": (256, 512, 1024),
    "cohere.embed-english-v3": (1024,),
}


class ExperimentArm(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
    weight: int = Field(0, ge=0, le=100)  # traffic share (A/B kinds)
    variant: str | None = None  # model kinds: the endpoint's production variant
    version: int | None = Field(None, ge=1)  # prompt-ab: the catalog version
    model: str | None = None  # embedding-ab: the embedding model
    dimension: int | None = Field(None, ge=2, le=16000)
    shadow: bool = False  # model-shadow: the arm that receives copies and answers no one


class ExperimentConfig(_Model):
    """A shadow or A/B test of models, prompts or embedding models, and how it is decided."""

    kind: Literal["model-ab", "model-shadow", "prompt-ab", "embedding-ab"]
    arms: tuple[ExperimentArm, ...] = Field(min_length=2, max_length=10)
    endpoint: str | None = None  # model kinds: the LLM endpoint (inference config name)
    prompt: str | None = None  # prompt-ab: the prompt id
    alias: str = "prod"  # prompt-ab: the alias whose weights split traffic
    shadow_sampling: int = Field(100, ge=1, le=100)  # model-shadow: % of requests copied to the shadow
    metrics: tuple[str, ...] = Field(("relevance", "hallucination", "latency_ms"), min_length=1)
    min_samples: int = Field(200, ge=10, le=10_000_000)
    alpha: float = Field(0.05, gt=0, lt=0.5)
    end: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")  # ISO date; synth refuses an experiment past its end
    winner: str | None = None  # set by `llmops experiments promote`; the winner then takes all traffic

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(EXPERIMENT_METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; allowed: {', '.join(EXPERIMENT_METRICS)}")
        return value

    @model_validator(mode="after")
    def _shape(self) -> "ExperimentConfig":
        import datetime as _dt

        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arms: names must be unique, got {names}")
        if self.winner is not None and self.winner not in names:
            raise ValueError(f"winner: {self.winner!r} is not an arm; arms: {', '.join(names)}")
        try:
            end = _dt.date.fromisoformat(self.end)
        except ValueError:
            raise ValueError(f"end: not a date: {self.end!r}") from None
        if end < _dt.date.today() and self.winner is None:
            raise ValueError(f"end: {self.end} is past; promote the winner (`llmops experiments promote`) or extend it")
        if self.kind == "model-shadow":
            shadows = [a for a in self.arms if a.shadow]
            if len(self.arms) != 2 or len(shadows) != 1:
                raise ValueError("arms: a shadow test has exactly one production and one shadow arm (AWS allows one shadow variant)")
        else:
            if any(a.shadow for a in self.arms):
                raise ValueError(f"arms: shadow arms belong to model-shadow experiments, not {self.kind}")
            total = sum(a.weight for a in self.arms)
            if total != 100:
                raise ValueError(f"arms: weights must sum to 100, got {total}")
        if self.kind in ("model-ab", "model-shadow"):
            if not self.endpoint:
                raise ValueError(f"endpoint: a {self.kind} experiment names the LLM endpoint whose variants it compares")
            missing = [a.name for a in self.arms if not a.variant]
            if missing:
                raise ValueError(f"arms: variant is required for every arm of a {self.kind} experiment, missing in {missing}")
        if self.kind == "prompt-ab":
            if not self.prompt:
                raise ValueError("prompt: a prompt-ab experiment names the prompt id whose alias it splits")
            if len(self.arms) > 2:
                raise ValueError("arms: a prompt alias splits traffic between at most two versions")
            missing = [a.name for a in self.arms if a.version is None]
            if missing:
                raise ValueError(f"arms: version is required for every prompt-ab arm, missing in {missing}")
        if self.kind == "embedding-ab":
            for arm in self.arms:
                if not arm.model or arm.dimension is None:
                    raise ValueError(f"arms.{arm.name}: model and dimension are required for an embedding arm")
                known = EMBEDDING_DIMENSIONS.get(arm.model)
                if known and arm.dimension not in known:
                    raise ValueError(
                        f"arms.{arm.name}.dimension: {arm.model} gives {'/'.join(map(str, known))} dimensions, "
                        f"not {arm.dimension}; its index must be built with the model's dimension"
                    )
        return self


_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")
_TOPIC_ARN_RE = re.compile(r"arn:aws[a-z-]*:sns:[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d:\d{12}:[A-Za-z0-9_-]{1,256}")


class AlertsConfig(_Model):
    """Where alarms go: e-mail addresses subscribed to the foundation alarm topic and/or an existing topic."""

    emails: tuple[str, ...] = ()
    # An existing standard SNS topic (a chat or paging integration) every alarm also notifies.
    topic_arn: str | None = None

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [e for e in value if not isinstance(e, str) or not _EMAIL_RE.fullmatch(e)]
        if bad:
            raise ValueError(f"not e-mail address(es): {bad}; write them like ops@example.com")
        return tuple(dict.fromkeys(value))

    @field_validator("topic_arn")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        if value is not None:
            if value.endswith(".fifo"):
                raise ValueError(f"CloudWatch alarms notify standard SNS topics only, got the FIFO topic {value!r}")
            if not _TOPIC_ARN_RE.fullmatch(value):
                raise ValueError(f"must be an SNS topic ARN like arn:aws:sns:eu-west-1:123456789012:alerts, got {value!r}")
        return value


MONITORED_METRICS = (
    "relevance", "hallucination", "toxicity", "sentiment", "readability", "repetition", "refusal", "jailbreak",
    "injection", "prompt_tokens", "response_tokens", "top_score",
)


class DriftConfig(_Model):
    metrics: tuple[str, ...] = ("relevance", "hallucination", "toxicity", "refusal")
    psi_threshold: float = Field(0.2, gt=0, le=10)  # population stability index; 0.1-0.2 moderate, > 0.2 large shift
    ks_threshold: float = Field(0.2, gt=0, le=1)  # two-sample Kolmogorov-Smirnov statistic
    evaluation_periods: int = Field(1, ge=1, le=24)  # drift results (one per scoring window) in a row before the alarm

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(MONITORED_METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; allowed: {', '.join(MONITORED_METRICS)}")
        return tuple(dict.fromkeys(value))


class RetrainingConfig(_Model):
    enabled: bool = True  # a drift alarm asks for a fine-tuning run of its use case
    cooldown_hours: int = Field(168, ge=1, le=8760)  # at most one run per use case per cooldown
    require_approval: bool = True  # the run waits for `llmops monitor approve-retraining`


class MonitoringConfig(_Model):
    drift: DriftConfig = DriftConfig()
    retraining: RetrainingConfig = RetrainingConfig()


class NagPacksConfig(_Model):
    hipaa: bool = False
    nist_800_53_r5: bool = False


# Comprehend PiiEntityType values (Comprehend API reference, PiiEntity.Type); ALL selects every type.
PII_ENTITY_TYPES = (
    "ALL", "BANK_ACCOUNT_NUMBER", "BANK_ROUTING", "CREDIT_DEBIT_NUMBER", "CREDIT_DEBIT_CVV", "CREDIT_DEBIT_EXPIRY",
    "PIN", "EMAIL", "ADDRESS", "NAME", "PHONE", "SSN", "DATE_TIME", "PASSPORT_NUMBER", "DRIVER_ID", "URL", "AGE",
    "USERNAME", "PASSWORD", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "IP_ADDRESS", "MAC_ADDRESS", "LICENSE_PLATE",
    "VEHICLE_IDENTIFICATION_NUMBER", "UK_NATIONAL_INSURANCE_NUMBER", "CA_SOCIAL_INSURANCE_NUMBER",
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER", "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER", "IN_PERMANENT_ACCOUNT_NUMBER",
    "IN_NREGA", "INTERNATIONAL_BANK_ACCOUNT_NUMBER", "SWIFT_CODE", "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
    "CA_HEALTH_NUMBER", "IN_AADHAAR", "IN_VOTER_NUMBER",
)


class ExistingWorkforceConfig(_Model):
    """The Cognito user pool and app client of the account's existing private workforce."""

    user_pool_id: str
    client_id: str

    @field_validator("user_pool_id")
    @classmethod
    def _pool(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d_[0-9a-zA-Z]{1,55}", value):
            raise ValueError(f"must be a Cognito user pool id like us-east-1_AbCdEf123, got {value!r}")
        return value

    @field_validator("client_id")
    @classmethod
    def _client(cls, value: str) -> str:
        if not re.fullmatch(r"[\w+]{1,128}", value):
            raise ValueError(f"must be a Cognito app client id (letters, digits, '_' and '+'), got {value!r}")
        return value


class WorkteamConfig(_Model):
    """The private Ground Truth workteam that labels curated text (docs/data_prep.md: which to choose).

    Default: a Cognito user pool, the private workforce and a workteam are created. An account
    that already has a private workforce (one per region) names it in ``existing_workforce``
    (a new team in it), or names a team to use as is in ``existing_workteam_arn``.
    """

    enabled: bool = True
    description: str = Field("LLMOps data labeling team", min_length=1, max_length=200)
    # Optional SNS notifications of new labeling tasks to workers.
    notify_workers: bool = False
    existing_workforce: ExistingWorkforceConfig | None = None
    existing_workteam_arn: str | None = None

    @field_validator("existing_workteam_arn")
    @classmethod
    def _workteam(cls, value: str | None) -> str | None:
        pattern = r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:workteam/private-crowd/[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
        if value is not None and not re.fullmatch(pattern, value):
            raise ValueError(f"must be a private workteam ARN (arn:aws:sagemaker:<region>:<account>:workteam/private-crowd/<name>), got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> "WorkteamConfig":
        if self.existing_workteam_arn and self.existing_workforce:
            raise ValueError("existing_workteam_arn and existing_workforce: set one (a team to use, or a workforce to add a team to)")
        if self.existing_workteam_arn and self.notify_workers:
            raise ValueError("notify_workers: an imported workteam keeps its own notification settings; set it false")
        return self


class ObjectLockConfig(_Model):
    """S3 Object Lock on the data bucket: every object version is kept ``raw_retention_days``."""

    enabled: bool = False
    mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"


class DataPrepConfig(_Model):
    """Data preparation: Textract features, PII redaction, optional custom classifier, workteam."""

    textract_features: tuple[Literal["LAYOUT", "TABLES", "FORMS"], ...] = ("LAYOUT", "TABLES")
    pii_entity_types: tuple[str, ...] = ("ALL",)
    pii_min_score: float = Field(0.5, ge=0.0, le=1.0)
    mask: str = Field("[{type}]", min_length=1, max_length=40)
    custom_classifier_endpoint_arn: str | None = None
    extraction_timeout_minutes: int = Field(120, ge=5, le=1440)
    # Noncurrent versions of raw/ uploads (overwritten or deleted) are kept at least this long.
    raw_retention_days: int = Field(365, ge=1, le=36500)
    object_lock: ObjectLockConfig = ObjectLockConfig()
    workteam: WorkteamConfig = WorkteamConfig()

    @field_validator("pii_entity_types")
    @classmethod
    def _pii_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(PII_ENTITY_TYPES))
        if unknown or not value:
            raise ValueError(f"unknown PII entity type(s) {unknown or '(none given)'}; allowed: {', '.join(PII_ENTITY_TYPES)}")
        return tuple(dict.fromkeys(value))

    @field_validator("textract_features")
    @classmethod
    def _features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))

    @field_validator("custom_classifier_endpoint_arn")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        pattern = r"arn:aws[a-z-]*:comprehend:[a-z0-9-]+:\d{12}:document-classifier-endpoint/[A-Za-z0-9](-*[A-Za-z0-9])*"
        if value is not None and not re.fullmatch(pattern, value):
            raise ValueError(f"must be a Comprehend document-classifier-endpoint ARN, got {value!r}")
        return value


# Function folders (lambdas/<name>/handler.py) reserved_concurrency may name.
FUNCTION_NAMES = tuple(sorted(p.parent.name for p in (REPO_ROOT / "lambdas").glob("*/handler.py")))


class FunctionsConfig(_Model):
    """Lambda defaults: the concurrency each function may take from the account (the rest stays free)."""

    # Per function folder; "default" applies to every function not named, the provider frameworks included.
    reserved_concurrency: dict[str, int] = {"default": 10, "rag_query": 50, "prompt_catalog_api": 20, "rag_ingest": 20}

    @field_validator("reserved_concurrency")
    @classmethod
    def _concurrency(cls, value: dict[str, int]) -> dict[str, int]:
        value = {"default": 10, **value}
        for name, limit in value.items():
            if name != "default" and name not in FUNCTION_NAMES:
                raise ValueError(f"unknown function {name!r}; allowed: default, {', '.join(FUNCTION_NAMES)}")
            if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
                raise ValueError(f"{name}: reserved concurrency must be an integer 1-1000, got {limit!r}")
        return value

    def reserved_for(self, function: str) -> int:
        return self.reserved_concurrency.get(function, self.reserved_concurrency["default"])


class EnvironmentConfig(_Model):
    """One deployable environment (dev, staging, prod, or any name the team adds)."""

    name: str
    project: str
    account: str | None = None
    region: str | None = None
    name_prefix: str
    removal_policy: Literal["destroy", "retain", "snapshot"] = "destroy"
    cost_centre: str
    owner: str
    network: NetworkConfig = NetworkConfig()
    capabilities: CapabilitiesConfig = CapabilitiesConfig()
    vector_store: VectorStoreConfig = VectorStoreConfig()
    rag: RagConfig = RagConfig()
    data_prep: DataPrepConfig = DataPrepConfig()
    instances: InstancesConfig = InstancesConfig()
    nag_packs: NagPacksConfig = NagPacksConfig()
    alerts: AlertsConfig = AlertsConfig()
    fine_tuning: FineTuningConfig = FineTuningConfig()
    cost: CostConfig = CostConfig()
    human_review: HumanReviewConfig = HumanReviewConfig()
    experiments: dict[str, ExperimentConfig] = {}
    monitoring: MonitoringConfig = MonitoringConfig()
    functions: FunctionsConfig = FunctionsConfig()
    log_retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] = 90

    @field_validator("account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{12}", str(value)):
            raise ValueError(f"must be a 12-digit AWS account id (quote it in YAML), got {value!r}")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d", value):
            raise ValueError(f"not an AWS region name (like eu-west-1), got {value!r}")
        return value

    @field_validator("name_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        # Used in bucket, collection and role names: the strictest of those rules applies.
        if not re.fullmatch(r"[a-z][a-z0-9-]{1,18}[a-z0-9]", value):
            raise ValueError(
                f"must be 3-20 characters of a-z, 0-9 and '-', starting with a letter, got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _cross_field(self) -> "EnvironmentConfig":
        if self.network.existing_vpc_id and not (self.account and self.region):
            raise ValueError("network.existing_vpc_id needs account and region set (VPC lookup)")
        if self.is_prod and self.removal_policy != "retain":
            raise ValueError(f"removal_policy must be 'retain' in prod, got {self.removal_policy!r}")
        if self.capabilities.human_review and not (
            self.human_review.workteam_arn or (self.capabilities.data_prep and self.data_prep.workteam.enabled)
        ):
            raise ValueError(
                "capabilities.human_review: needs a workteam; set human_review.workteam_arn or turn on data_prep.workteam"
            )
        for exp_name, exp in self.experiments.items():
            if not re.fullmatch(r"[a-z][a-z0-9-]{1,40}", exp_name):
                raise ValueError(f"experiments: name {exp_name!r} must be 2-41 characters of a-z, 0-9 and '-'")
            if exp.kind == "embedding-ab" and exp.arms[0].dimension != self.vector_store.dimension:
                raise ValueError(
                    f"experiments.{exp_name}.arms.{exp.arms[0].name}.dimension: the control arm serves the current index "
                    f"({self.vector_store.dimension} dimensions), got {exp.arms[0].dimension}"
                )
        if self.name != "dev" and not self.account:
            raise ValueError("account is required outside dev (pin staging and prod to an account)")
        topic = self.alerts.topic_arn
        if topic and self.region and topic.split(":")[3] != self.region:
            raise ValueError(f"alerts.topic_arn: alarms notify topics of their own region {self.region}, got {topic!r}")
        return self

    @property
    def is_prod(self) -> bool:
        return self.name == "prod"


# Account ids that only ever appear in examples; a pipeline that deploys to one is not deployable.
EXAMPLE_ACCOUNTS = frozenset({"000000000000", "111111111111", "222222222222", "333333333333", "123456789012"})


class DeliverySourceConfig(_Model):
    """Where the pipeline reads the repository: a CodeConnections connection, or S3 (air-gapped)."""

    kind: Literal["codeconnections", "s3"] = "codeconnections"
    connection_arn: str | None = None
    repository: str | None = None  # owner/name
    branch: str = Field("main", min_length=1, max_length=255)
    bucket: str | None = None
    key: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> "DeliverySourceConfig":
        if self.kind == "codeconnections":
            pattern = r"arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}"
            if not self.connection_arn or not re.fullmatch(pattern, self.connection_arn):
                raise ValueError(f"connection_arn: a CodeConnections connection ARN is required, got {self.connection_arn!r}")
            if not self.repository or not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", self.repository):
                raise ValueError(f"repository: must be owner/name, got {self.repository!r}")
        elif not (self.bucket and self.key):
            raise ValueError("bucket and key: an s3 source needs both (a zip of the repository)")
        return self


class DeliveryConfig(_Model):
    """The CI/CD pipeline (CDK Pipelines) in a tooling account that promotes one release through the stages."""

    enabled: bool = False
    account: str
    region: str
    name_prefix: str = Field("llmops-delivery", pattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
    source: DeliverySourceConfig
    stages: tuple[str, ...] = ("dev", "staging", "prod")
    manual_approval_before: tuple[str, ...] = ("prod",)
    staging_stage: str = "staging"  # the stage every production stage must come after
    allow_skipping_staging: bool = False  # prod may follow dev directly only when this says so
    release_file: str = "release.json"
    # The accounts are examples: the pipeline synthesizes for review, but its template refuses to deploy.
    example: bool = False

    @field_validator("account")
    @classmethod
    def _account(cls, value: str) -> str:
        if not re.fullmatch(r"\d{12}", str(value)):
            raise ValueError(f"must be a 12-digit AWS account id (quote it in YAML), got {value!r}")
        return value


class PlatformConfig(_Model):
    project: str
    environments: dict[str, EnvironmentConfig]
    delivery: DeliveryConfig | None = None

    def get(self, name: str) -> EnvironmentConfig:
        try:
            return self.environments[name]
        except KeyError:
            raise ConfigError(
                f"env: unknown environment {name!r}; allowed: {', '.join(self.environments)}"
            ) from None


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _format_error(prefix: str, err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        loc = ".".join(str(p) for p in item["loc"] if not str(p).startswith("function-after"))
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "literal_error":
            msg = f"got {item['input']!r}; allowed: {item['ctx']['expected']}"
        elif item["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        lines.append(f"{prefix}{'.' + loc if loc else ''}: {msg}")
    return "invalid platform configuration:\n  " + "\n  ".join(lines)


def parse_config(raw: dict[str, Any]) -> PlatformConfig:
    """Validate an already-parsed config mapping (the shape of environments.yaml)."""
    if not isinstance(raw, dict):
        raise ConfigError("config: top level must be a mapping with 'project' and 'environments'")
    extra = set(raw) - {"project", "defaults", "environments", "delivery"}
    if extra:
        raise ConfigError(
            f"config: unknown top-level field(s) {sorted(extra)}; allowed: project, defaults, environments, delivery"
        )
    project = raw.get("project")
    if not isinstance(project, str) or not re.fullmatch(r"[a-z][a-z0-9-]{1,30}", project or ""):
        raise ConfigError(f"project: must be a lower-case name like 'llmops', got {project!r}")
    envs = raw.get("environments")
    if not isinstance(envs, dict) or not envs:
        raise ConfigError("environments: must map at least one environment name to its settings")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError("defaults: must be a mapping")
    parsed: dict[str, EnvironmentConfig] = {}
    for name, overrides in envs.items():
        if not re.fullmatch(r"[a-z][a-z0-9]{1,15}", str(name)):
            raise ConfigError(f"environments.{name}: environment names are 2-16 lower-case letters/digits")
        if overrides is not None and not isinstance(overrides, dict):
            raise ConfigError(f"environments.{name}: must be a mapping")
        data = _deep_merge(defaults, overrides or {})
        data.update(name=name, project=project)
        try:
            parsed[name] = EnvironmentConfig.model_validate(data)
        except ValidationError as err:
            raise ConfigError(_format_error(f"environments.{name}", err)) from None
    delivery = _parse_delivery(raw.get("delivery"), parsed)
    return PlatformConfig(project=project, environments=parsed, delivery=delivery)


def _parse_delivery(raw: Any, envs: dict[str, EnvironmentConfig]) -> DeliveryConfig | None:
    if raw is None:
        return None
    try:
        delivery = DeliveryConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_error("delivery", err)) from None
    unknown = [s for s in delivery.stages + delivery.manual_approval_before if s not in envs]
    if unknown:
        raise ConfigError(f"delivery.stages: unknown environment(s) {unknown}; allowed: {', '.join(envs)}")
    if len(set(delivery.stages)) != len(delivery.stages):
        raise ConfigError(f"delivery.stages: an environment appears twice in {list(delivery.stages)}")
    order = list(delivery.stages)
    if delivery.staging_stage not in envs:
        raise ConfigError(f"delivery.staging_stage: unknown environment {delivery.staging_stage!r}; allowed: {', '.join(envs)}")
    for i, name in enumerate(order):
        if envs[name].is_prod and delivery.staging_stage not in order[:i] and not delivery.allow_skipping_staging:
            raise ConfigError(
                f"delivery.stages: {name} (production) must come after {delivery.staging_stage}, got {order}; "
                "reorder the stages or set delivery.allow_skipping_staging: true"
            )
    if delivery.enabled and not delivery.example:
        for field, account in [("delivery.account", delivery.account)] + [
            (f"environments.{n}.account", envs[n].account) for n in delivery.stages
        ]:
            if account in EXAMPLE_ACCOUNTS:
                raise ConfigError(
                    f"{field}: {account} is an example account; the pipeline would deploy to it. Put your account "
                    "there, or set delivery.example: true to synthesize a pipeline that refuses to deploy"
                )
    return delivery


def load_config(path: str | Path | None = None) -> PlatformConfig:
    """Load and validate the platform config file (default ``config/environments.yaml``)."""
    path = Path(path) if path else DEFAULT_CONFIG_PATH
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(raw)
