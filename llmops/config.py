"""Typed, validated environment configuration.

The platform team edits ``config/environments.yaml``; this module loads it, deep-merges each
environment over ``defaults`` and validates the result. A wrong value raises ``ConfigError``
whose message names the field (``environments.prod.vector_store.backend``) and the allowed
values, so synth fails at once instead of deep inside CloudFormation.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from dataclasses import dataclass
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmops.regions import AWS_REGIONS

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
from llmops import inference as serving  # noqa: E402  (pydantic + stdlib only)
from llmops.instance_types import INFERENCE_FAMILIES, INSTANCE_TYPES, TRAINING_FAMILIES, InstanceType, unknown_type_message  # noqa: E402
_INSTANCE_RE = re.compile(r"^ml\.([a-z0-9]+)\.([0-9]*x?large|xlarge|[0-9]+xlarge)$")


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the field."""


class _Model(BaseModel):
    # Unknown keys are errors: a misspelt key must not be silently ignored. Strict: "yes" is not a
    # bool and "3" not an int (YAML gives real types; a quoted value is a mistake worth naming).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _lists_as_tuples(cls, data: Any) -> Any:
        # YAML gives lists where the models hold tuples; strict mode would refuse them (elements stay strict).
        if isinstance(data, dict):
            return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return data


# Strict mode takes only tuples for tuple fields; YAML gives lists: those fields say strict=False.
# Account ids of documentation and the committed example config: never real, never granted to.
PLACEHOLDER_ACCOUNTS = frozenset({"000000000000", "111111111111", "222222222222", "123456789012", "999999999999"})


# Prefix of each isolated subnet PlatformNetwork creates (one per AZ); config checks the CIDR holds them.
SUBNET_PREFIX = 20


class NetworkConfig(_Model):
    cidr: str = "10.40.0.0/16"
    max_azs: int = Field(2, ge=1, le=6)
    existing_vpc_id: str | None = None
    flow_log_retention_days: int = Field(90, ge=1)
    interface_endpoints: tuple[str, ...] = Field((), strict=False)
    # Interface endpoints in the first N AZs only (None: every AZ). Each endpoint costs per AZ-hour;
    # one AZ trades endpoint availability for cost (dev).
    interface_endpoint_azs: int | None = Field(None, ge=1, le=6)
    # "all": every function runs in the isolated subnets. "when-needed": only functions that reach a
    # VPC resource (the Aurora cluster) do; the rest call AWS APIs over Lambda's own network, so the
    # environment needs no interface endpoints for them (dev: trades network isolation for cost).
    functions_in_vpc: Literal["all", "when-needed"] = "all"
    # existing_vpc_id: flow logs on the imported VPC (off when the VPC's owner already logs it).
    flow_logs: bool = True

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

    @model_validator(mode="after")
    def _subnets_fit(self) -> "NetworkConfig":
        # One isolated subnet of SUBNET_PREFIX per AZ (PlatformNetwork) must fit in the CIDR.
        import ipaddress

        if self.existing_vpc_id:
            return self
        net = ipaddress.IPv4Network(self.cidr)
        if net.prefixlen > SUBNET_PREFIX:
            raise ValueError(
                f"cidr {self.cidr} (/{net.prefixlen}) cannot hold a /{SUBNET_PREFIX} subnet; "
                f"use /{SUBNET_PREFIX} or larger (smaller prefix)"
            )
        capacity = 2 ** (SUBNET_PREFIX - net.prefixlen)
        if capacity < self.max_azs:
            raise ValueError(
                f"cidr {self.cidr} holds {capacity} /{SUBNET_PREFIX} subnet(s) but max_azs {self.max_azs} needs "
                f"{self.max_azs}; use a /{SUBNET_PREFIX - (self.max_azs - 1).bit_length()} or larger, or fewer AZs"
            )
        return self

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
    inference: bool = True
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
    llm_container: Literal["tgi", "djl-lmi", "vllm"] = "tgi"
    chunk_size: int = Field(200, ge=32, le=8192)  # tokens
    chunk_overlap: int = Field(40, ge=0, le=4096)
    top_k: int = Field(4, ge=1, le=50)
    max_question_chars: int = Field(2000, ge=16, le=100_000)
    prompt_id: str = "rag-answer"
    prompt_alias: str = "prod"
    interaction_retention_days: int = Field(30, ge=1, le=3650)  # questions and answers kept in the interaction log
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


DATASET_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class FineTuningUseCase(_Model):
    # Exactly the dataset names data prep produces (lambdas/runtime/data_prep/datasets.py _NAME): no '.' or '_'.
    dataset: str = Field(pattern=DATASET_NAME_PATTERN)
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
    serving_image: Literal["tgi", "djl-lmi"] = "tgi"
    # Accounts (e.g. staging, prod) allowed to read approved model packages of this environment.
    reader_accounts: tuple[str, ...] = Field((), strict=False)

    @model_validator(mode="before")
    @classmethod
    def _no_mlflow(cls, data: Any) -> Any:
        if isinstance(data, dict) and "mlflow" in data:
            raise ValueError(
                "mlflow: removed; the training jobs run network-isolated with no MLflow client, so the switch could "
                "not log anything (metrics are in train_report.json, evaluation.json and the model package); delete the key"
            )
        return data

    @field_validator("reader_accounts", mode="before")
    @classmethod
    def _readers_quoted(cls, value: Any) -> Any:
        # Before strict typing, so an unquoted id (a YAML int) keeps the "quote them" hint.
        if isinstance(value, (list, tuple)):
            for account in value:
                if not isinstance(account, str):
                    raise ValueError(f"must be 12-digit AWS account ids as quoted strings (quote them in YAML), got {account!r}")
        return value

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
        if self.strategy == "qlora" and (self.instance_count or 1) > 1:
            raise ValueError(
                f"strategy: qlora trains on one instance (its 4-bit model is spread over that node's GPUs, which "
                f"distributed data parallel cannot replicate); got instance_count {self.instance_count}: "
                "use instance_count 1, or strategy lora for several instances"
            )
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


class ExperimentsJudgeConfig(_Model):
    """The scheduled judge job (``ExperimentsStack``), created only when the environment declares experiments."""

    # EventBridge schedule expression; daily by default (the judge reads whole days of metrics).
    schedule: str = "rate(1 day)"
    lookback_days: int = Field(30, ge=1, le=366)  # days of monitoring/metrics/dt=... partitions each run reads
    memory_mb: int = Field(1024, ge=256, le=10240)
    timeout_minutes: int = Field(10, ge=1, le=15)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", value)
        if rate:
            n, unit = int(rate.group(1)), rate.group(2)
            if n < 1 or (n == 1) != (not unit.endswith("s")):
                raise ValueError(f"{value!r}: rate(1 day), rate(2 days): singular unit for 1, plural otherwise")
            if unit.startswith("minute") and n < 60:
                raise ValueError(f"{value!r}: judge at most hourly (the metrics arrive in daily partitions)")
            return value
        if re.fullmatch(r"cron\(\S+ \S+ \S+ \S+ \S+ \S+\)", value):
            return value
        raise ValueError(f"not an EventBridge schedule expression (rate(1 day), cron(0 6 * * ? *)), got {value!r}")


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
    # The one drift rule (CLI, scorer, alarms): PSI >= psi_threshold, or the two-sample
    # Kolmogorov-Smirnov test has p < ks_pvalue with a statistic >= ks_threshold (KS alone flags
    # negligible shifts once there are thousands of records).
    ks_threshold: float = Field(0.1, gt=0, le=1)  # smallest two-sample KS statistic that counts
    ks_pvalue: float = Field(0.01, gt=0, lt=1)  # and its p-value must be below this
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

    textract_features: tuple[Literal["LAYOUT", "TABLES", "FORMS"], ...] = Field(("LAYOUT", "TABLES"), strict=False)
    pii_entity_types: tuple[str, ...] = Field(("ALL",), strict=False)
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


# -- inference ------------------------------------------------------------------------------------

class InstanceFactsConfig(_Model):
    """Facts of an instance type newer than ``llmops/instance_types.py`` (the escape hatch)."""

    accelerator: Literal["nvidia", "neuron", "none"]
    accelerator_name: str = ""
    accelerator_count: int = Field(0, ge=0, le=64)
    accelerator_memory_gib: float = Field(0, ge=0)
    vcpus: int = Field(ge=1)
    memory_gib: int = Field(ge=1)
    nvme: bool
    price_per_hour: float = Field(0, ge=0)


class ModelSourceConfig(_Model):
    """Where the served weights come from (no Hugging Face token, no internet at the endpoint)."""

    # model-package: the approved package of fine_tuning.use_cases.<use_case> (SSM, resolved at deploy);
    # s3: an uncompressed artifact under s3://<artifacts>/models/<s3_prefix>; base-model:
    # s3://<artifacts>/base-models/<base_model>/<revision>/ written by `llmops models import`.
    source: Literal["base-model", "s3", "model-package"] = "base-model"
    base_model: str = Field("meta-llama/Llama-3.2-1B-Instruct", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
    revision: str = Field("main", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    s3_prefix: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._/-]{0,200}/$")
    use_case: str | None = None
    params_billion: float | None = Field(None, gt=0, le=2000)  # None: from the known-models table
    dtype: Literal["fp32", "fp16", "bf16", "fp8", "int8", "int4", "awq", "gptq"] | None = None

    @model_validator(mode="after")
    def _source(self) -> "ModelSourceConfig":
        if self.source == "s3" and not self.s3_prefix:
            raise ValueError("s3_prefix: required when source is s3 (the folder under models/, ending in '/')")
        if self.source == "model-package" and not self.use_case:
            raise ValueError("use_case: required when source is model-package (a fine_tuning.use_cases name)")
        return self

    def size(self) -> tuple[float | None, str]:
        known = serving.KNOWN_MODELS.get(self.base_model)
        params = self.params_billion or (known.params_billion if known else None)
        return params, self.dtype or (known.dtype if known else "bf16")


class VariantConfig(_Model):
    """One production (or the shadow) variant; unset fields inherit the endpoint's."""

    weight: float = Field(1.0, ge=0, le=1000)
    shadow: bool = False
    model: ModelSourceConfig | None = None
    container: serving.LlmContainer | None = None
    settings: dict[str, str | int | float | bool] | None = None
    instance_type: str | None = None
    instance_count: int | None = Field(None, ge=1, le=64)
    tensor_parallel_degree: int | None = Field(None, ge=1, le=64)


@dataclass(frozen=True)
class ResolvedVariant:
    name: str
    weight: float
    shadow: bool
    model: ModelSourceConfig
    container: str
    settings: dict[str, str]
    instance_type: str
    instance_count: int
    tensor_parallel_degree: int


class ScalingConfig(_Model):
    # target-tracking: invocations per instance between min and max; scale-to-zero: inference
    # components, min 0 copies, step scaling out of zero on the NoCapacityInvocationFailures alarm.
    mode: Literal["target-tracking", "scale-to-zero", "none"] = "target-tracking"
    min_capacity: int = Field(1, ge=0, le=64)
    max_capacity: int = Field(2, ge=1, le=64)
    target_invocations: int = Field(60, ge=1, le=100000)  # per instance (or copy) per minute
    scale_in_cooldown_seconds: int = Field(600, ge=0, le=86400)

    @model_validator(mode="after")
    def _bounds(self) -> "ScalingConfig":
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity ({self.min_capacity}) must not exceed max_capacity ({self.max_capacity})")
        if self.mode == "target-tracking" and self.min_capacity < 1:
            raise ValueError("min_capacity: target tracking cannot leave zero; use mode scale-to-zero (or async) for 0")
        return self


class EndpointScheduleConfig(_Model):
    """Stop and start an instance-based endpoint on a schedule (EventBridge Scheduler): ``stop`` deletes the
    endpoint (the model and endpoint config stay in the stack), ``start`` creates it again from the
    stack's current endpoint config. Only for endpoints that cannot scale to zero; see docs/inference.md."""

    enabled: bool = False
    start: str = "cron(0 7 ? * MON-FRI *)"  # EventBridge cron, 6 fields, in ``timezone``
    stop: str = "cron(0 19 ? * MON-FRI *)"
    timezone: str = "UTC"  # IANA name, e.g. Europe/Berlin

    @field_validator("start", "stop")
    @classmethod
    def _cron(cls, value: str) -> str:
        from llmops.cron import Cron, CronError

        try:
            return Cron(value).expression
        except CronError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone name (e.g. UTC, Europe/Berlin, America/New_York)") from None
        return value

    def on_hours_per_day(self) -> float:
        from llmops.cron import Cron, on_hours_per_day

        return on_hours_per_day(Cron(self.start), Cron(self.stop))


class AsyncConfig(_Model):
    enabled: bool = False  # asynchronous inference: S3 in/out, scales from zero on backlog
    max_concurrent_invocations_per_instance: int = Field(4, ge=1, le=1000)
    target_backlog_per_instance: int = Field(5, ge=1, le=10000)


class LlmEndpointConfig(_Model):
    name: str = Field("llm", pattern=r"^[a-z][a-z0-9-]{0,19}$")  # endpoint <name_prefix>-<name>
    model: ModelSourceConfig = ModelSourceConfig()
    container: serving.LlmContainer = "djl-lmi"
    settings: dict[str, str | int | float | bool] = {}
    instance_type: str | None = None  # default instances.inference.type
    instance_count: int | None = Field(None, ge=1, le=64)  # default instances.inference.count
    tensor_parallel_degree: int | None = Field(None, ge=1, le=64)  # default: every accelerator of the type
    health_check_timeout_seconds: int = Field(1800, ge=60, le=3600)
    variants: dict[str, VariantConfig] = {"primary": VariantConfig()}
    scaling: ScalingConfig = ScalingConfig()
    async_inference: AsyncConfig = AsyncConfig()
    schedule: EndpointScheduleConfig = EndpointScheduleConfig()  # off by default

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: dict[str, VariantConfig]) -> dict[str, VariantConfig]:
        for name in value:
            if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name):
                raise ValueError(f"variant name {name!r} must be 1-63 of a-z, A-Z, 0-9 and '-'")
        shadows = [n for n, v in value.items() if v.shadow]
        production = [n for n, v in value.items() if not v.shadow]
        if not 1 <= len(production) <= 10:
            raise ValueError(f"{len(production)} production variants; allowed: 1 to 10")
        if len(shadows) > 1:
            raise ValueError(f"at most one shadow variant, got {shadows}")
        if shadows and len(production) != 1:
            raise ValueError(f"a shadow variant needs exactly one production variant, got {production}")
        return value


class EmbeddingEndpointConfig(_Model):
    enabled: bool = True
    name: str = Field("embeddings", pattern=r"^[a-z][a-z0-9-]{0,19}$")
    model_id: str = Field("sentence-transformers/all-MiniLM-L6-v2", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
    revision: str = Field("main", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    dimension: int | None = Field(None, ge=2, le=16000)  # None: from the known-models table
    container: serving.EmbeddingContainer = "tei-cpu"
    settings: dict[str, str | int | float | bool] = {}
    # serverless: no idle cost (dev); otherwise instance_type / instance_count.
    serverless: bool = True
    serverless_memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 3072
    serverless_max_concurrency: int = Field(5, ge=1, le=200)
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = Field(1, ge=1, le=64)
    schedule: EndpointScheduleConfig = EndpointScheduleConfig()  # off by default; instance-based only

    @model_validator(mode="after")
    def _serverless(self) -> "EmbeddingEndpointConfig":
        if self.serverless and self.container != "tei-cpu":
            raise ValueError(f"container: serverless inference has no GPU; use tei-cpu, got {self.container!r}")
        return self

    def resolved_dimension(self) -> int | None:
        known = serving.KNOWN_MODELS.get(self.model_id)
        return self.dimension or (known.embedding_dimension if known else None)


class InferenceConfig(_Model):
    """The environment's LLM and embedding endpoints (``InferenceStack``)."""

    llm: LlmEndpointConfig = LlmEndpointConfig()
    embeddings: EmbeddingEndpointConfig = EmbeddingEndpointConfig()
    data_capture_percent: int = Field(100, ge=0, le=100)  # 0 turns capture off


# Function folders (lambdas/<name>/handler.py) reserved_concurrency may name.
FUNCTION_NAMES = tuple(sorted(p.parent.name for p in (REPO_ROOT / "lambdas").glob("*/handler.py")))


class FunctionsConfig(_Model):
    """Lambda defaults: the concurrency each function may take from the account (the rest stays free)."""

    # Per function folder; "default" applies to every function not named, the provider frameworks included.
    reserved_concurrency: dict[str, int] = {"default": 10, "rag_query": 50, "prompt_catalog_api": 20,
                                           "prompt_catalog_writer": 20, "rag_ingest": 20}

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


class EnvironmentDeliveryConfig(_Model):
    """How the pipeline promotes a release into this environment."""

    # share: deploy the source account's package through its resource policy (the default);
    # copy: a pipeline step registers the package and copies its artifacts into this account first.
    model_promotion: Literal["share", "copy"] = "share"
    # The post-deploy smoke test: retries while a scaled-to-zero model starts, and their spacing.
    smoke_attempts: int = Field(20, ge=1, le=60)
    smoke_interval_seconds: int = Field(30, ge=1, le=300)
    # An experiment verdict older than this stops the gate (the scheduled judge writes one per run).
    verdict_max_age_hours: int = Field(48, ge=1, le=24 * 30)


class EnvironmentConfig(_Model):
    """One deployable environment (dev, staging, prod, or any name the team adds)."""

    name: str
    project: str
    account: str | None = None
    region: str | None = None
    # A region missing from llmops/regions.py (newer than the list) is accepted only with this.
    allow_unlisted_region: bool = False
    # Production environments: resources are retained and stacks termination-protected.
    production: bool = False
    # The committed example: placeholder accounts allowed, templates marked not deployable.
    example: bool = False
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
    experiments_judge: ExperimentsJudgeConfig = ExperimentsJudgeConfig()
    # The release manifest (path from the repository root) whose model package, prompt and image pins
    # this environment deploys; null: the approved package from SSM at deploy and the prompt files as they are.
    release: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9/][A-Za-z0-9._/-]*\.json$")
    delivery: EnvironmentDeliveryConfig = EnvironmentDeliveryConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    inference: InferenceConfig = InferenceConfig()
    # Facts of instance types newer than llmops/instance_types.py, by name ("ml.g7.2xlarge": {...}).
    instance_facts: dict[str, InstanceFactsConfig] = {}
    functions: FunctionsConfig = FunctionsConfig()
    log_retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] = 90

    @field_validator("account", mode="before")
    @classmethod
    def _account(cls, value: Any) -> Any:
        # Before strict typing, so an unquoted id (a YAML int) keeps the "quote it" hint.
        if value is not None and not (isinstance(value, str) and re.fullmatch(r"\d{12}", value)):
            raise ValueError(f"must be a 12-digit AWS account id as a quoted string (quote it in YAML), got {value!r}")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d", value):
            raise ValueError(f"not an AWS region name (like eu-west-1), got {value!r}")
        return value

    def placeholder_grants(self) -> list[str]:
        """Field paths (below the environment) that name a placeholder account."""
        found = [f"account ({self.account})"] if self.account in PLACEHOLDER_ACCOUNTS else []
        found += [f"fine_tuning.reader_accounts ({a})" for a in self.fine_tuning.reader_accounts if a in PLACEHOLDER_ACCOUNTS]
        return found

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
        if self.region and self.region not in AWS_REGIONS and not self.allow_unlisted_region:
            raise ValueError(
                f"region: {self.region!r} is not a known AWS region (llmops/regions.py); check the spelling, or set "
                "allow_unlisted_region: true for a region newer than that list"
            )
        if self.production and self.removal_policy != "retain":
            raise ValueError(
                f"removal_policy must be 'retain' in a production environment (production: true), got {self.removal_policy!r}"
            )
        placeholders = self.placeholder_grants()
        if placeholders and not self.example:
            raise ValueError(
                f"{', '.join(placeholders)}: placeholder account id(s) would receive grants; replace them with real "
                "account ids, or mark the environment 'example: true' (it then synthesizes, marked not deployable)"
            )
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
        _check_model_experiments(self)
        if self.name != "dev" and not self.account:
            raise ValueError("account is required outside dev (pin staging and prod to an account)")
        topic = self.alerts.topic_arn
        if topic and self.region and topic.split(":")[3] != self.region:
            raise ValueError(f"alerts.topic_arn: alarms notify topics of their own region {self.region}, got {topic!r}")
        self._check_instance_types()
        _check_inference(self)
        _check_embedding_experiments(self)
        return self

    def instance(self, name: str) -> InstanceType | None:
        """The facts of an instance type: the table, else ``instance_facts``."""
        if name in INSTANCE_TYPES:
            return INSTANCE_TYPES[name]
        facts = self.instance_facts.get(name)
        return InstanceType(name=name, **facts.model_dump()) if facts else None

    def _check_instance_types(self) -> None:
        ft, inf = self.fine_tuning, self.inference
        fields = {
            "instances.training.type": (self.instances.training.type, TRAINING_FAMILIES),
            "instances.inference.type": (self.instances.inference.type, INFERENCE_FAMILIES),
            "fine_tuning.instance_type": (ft.instance_type, TRAINING_FAMILIES),
            "fine_tuning.evaluation_instance_type": (ft.evaluation_instance_type, TRAINING_FAMILIES),
            "fine_tuning.prepare_instance_type": (ft.prepare_instance_type, INFERENCE_FAMILIES),
            "inference.llm.instance_type": (inf.llm.instance_type, INFERENCE_FAMILIES),
            "inference.embeddings.instance_type": (None if inf.embeddings.serverless else inf.embeddings.instance_type, INFERENCE_FAMILIES),
        }
        fields.update({f"inference.llm.variants.{n}.instance_type": (v.instance_type, INFERENCE_FAMILIES)
                       for n, v in inf.llm.variants.items()})
        for where, (name, families) in fields.items():
            if name is not None and self.instance(name) is None:
                raise ValueError(f"{where}: {unknown_type_message(name, families)}")

    def llm_variants(self) -> list[ResolvedVariant]:
        """The LLM endpoint's variants with endpoint-level defaults filled in (production first)."""
        llm = self.inference.llm
        out = []
        for name, v in llm.variants.items():
            itype = v.instance_type or llm.instance_type or self.instances.inference.type
            facts = self.instance(itype)
            tp = v.tensor_parallel_degree or llm.tensor_parallel_degree or max(1, facts.accelerator_count if facts else 1)
            out.append(ResolvedVariant(
                name=name, weight=v.weight, shadow=v.shadow, model=v.model or llm.model,
                container=v.container or llm.container,
                settings={k: serving.render(x) for k, x in {**llm.settings, **(v.settings or {})}.items()},
                instance_type=itype, instance_count=v.instance_count or llm.instance_count or self.instances.inference.count,
                tensor_parallel_degree=tp,
            ))
        return sorted(self._experiment_variants(out), key=lambda r: (r.shadow, r.name))

    def model_experiment(self) -> tuple[str, ExperimentConfig] | None:
        """The model-ab / model-shadow experiment on the LLM endpoint (at most one; config validation says so)."""
        for name, exp in self.experiments.items():
            if exp.kind in MODEL_EXPERIMENT_KINDS and exp.endpoint == self.inference.llm.name:
                return name, exp
        return None

    def _experiment_variants(self, variants: list[ResolvedVariant]) -> list[ResolvedVariant]:
        """A model experiment makes its arms the endpoint's variants: A/B weights, the shadow and its sampling.

        A promoted winner is left alone as the endpoint's only variant (all traffic, the others' instances released).
        """
        found = self.model_experiment()
        if found is None:
            return variants
        _, exp = found
        by_name = {v.name: v for v in variants}
        arms = {a.variant: a for a in exp.arms if a.variant in by_name}
        if exp.winner is not None:
            winner = next(a for a in exp.arms if a.name == exp.winner)
            v = by_name.get(winner.variant)
            return [dataclasses.replace(v, weight=100.0, shadow=False)] if v else variants
        out = []
        for v in variants:
            arm = arms.get(v.name)
            if arm is None:
                out.append(v)
            elif exp.kind == "model-shadow":
                # SageMaker copies to the shadow the share of requests its weight is of the production weight.
                out.append(dataclasses.replace(v, shadow=arm.shadow, weight=float(exp.shadow_sampling if arm.shadow else 100)))
            else:
                out.append(dataclasses.replace(v, weight=float(arm.weight), shadow=False))
        return out

    @property
    def is_prod(self) -> bool:
        return self.production

    @property
    def tags(self) -> dict[str, str]:
        """The tags every resource of the environment carries (the stage applies them)."""
        return {"project": self.project, "environment": self.name, "cost-centre": self.cost_centre, "owner": self.owner}


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


MODEL_EXPERIMENT_KINDS = ("model-ab", "model-shadow")


def experiment_specs(cfg: EnvironmentConfig) -> dict[str, dict]:
    """What the judge needs per experiment (its EXPERIMENTS variable), with the deployed endpoint name for model arms."""
    specs = {}
    for name, exp in cfg.experiments.items():
        spec: dict = {"kind": exp.kind, "metrics": list(exp.metrics), "min_samples": exp.min_samples, "alpha": exp.alpha,
                      "arms": [{"name": a.name, **({"variant": a.variant} if a.variant else {})} for a in exp.arms]}
        if exp.kind in MODEL_EXPERIMENT_KINDS:
            spec["endpoint"] = f"{cfg.name_prefix}-{exp.endpoint}"
        if exp.winner:
            spec["winner"] = exp.winner
        specs[name] = spec
    return specs


def _check_model_experiments(cfg: EnvironmentConfig) -> None:
    """A model experiment drives the LLM endpoint's variants: they must exist, be all of them, and be one experiment's."""
    llm = cfg.inference.llm
    owners = []
    for exp_name, exp in cfg.experiments.items():
        if exp.kind not in MODEL_EXPERIMENT_KINDS:
            continue
        where = f"experiments.{exp_name}"
        if not cfg.capabilities.inference:
            raise ValueError(f"{where}: a {exp.kind} experiment needs capabilities.inference (the endpoint it drives)")
        if exp.endpoint != llm.name:
            raise ValueError(f"{where}.endpoint: {exp.endpoint!r} is not the LLM endpoint; allowed: {llm.name} (inference.llm.name)")
        owners.append(exp_name)
        for arm in exp.arms:
            if arm.variant not in llm.variants:
                raise ValueError(f"{where}.arms.{arm.name}.variant: {arm.variant!r} is not a variant of inference.llm.variants; "
                                 f"declared: {', '.join(llm.variants)}")
        variants = [a.variant for a in exp.arms]
        if len(set(variants)) != len(variants):
            raise ValueError(f"{where}.arms: each arm serves its own variant, got {variants}")
        others = sorted(set(llm.variants) - set(variants))
        if others and exp.winner is None:
            raise ValueError(f"{where}.arms: inference.llm.variants {others} are not arms; the experiment's arms are all of "
                             "the endpoint's variants (traffic the judge does not see would dilute it)")
        if llm.scaling.mode == "scale-to-zero":
            raise ValueError(f"{where}: inference.llm.scaling.mode scale-to-zero serves one inference component, not "
                             "weighted or shadow variants; use target-tracking or none while the experiment runs")
        if cfg.inference.data_capture_percent == 0 and exp.winner is None:
            raise ValueError(f"{where}: inference.data_capture_percent is 0; the judge reads each variant's captured traffic")
    if len(owners) > 1:
        raise ValueError(f"experiments: {', '.join(owners)} all drive the variants of endpoint {llm.name}; one model experiment "
                         "per endpoint (remove the finished one once its winner is the only variant in inference.llm.variants)")
def embedding_arm_source(model: str) -> str:
    """Where an embedding arm's model runs: ``bedrock`` (Titan) or ``sagemaker`` (an endpoint of its own)."""
    return "bedrock" if model.startswith("amazon.titan-embed") else "sagemaker"


def embedding_arms_needing_endpoints(cfg: EnvironmentConfig) -> list[ExperimentArm]:
    """Arms of an embedding A/B that serve on a SageMaker endpoint of their own (all but the control while it
    runs; a promoted winner other than the control afterwards)."""
    out = []
    for exp in cfg.experiments.values():
        if exp.kind != "embedding-ab" or not (cfg.capabilities.inference and cfg.inference.embeddings.enabled):
            continue
        serving = exp.arms[1:] if exp.winner is None else [a for a in exp.arms[1:] if a.name == exp.winner]
        out += [a for a in serving if embedding_arm_source(a.model) == "sagemaker"]
    return out


def current_embedding_model(cfg: EnvironmentConfig) -> str | None:
    """The model the RAG functions embed with today; None when config names an endpoint made elsewhere."""
    if cfg.rag.embedding_provider == "bedrock":
        return cfg.rag.embedding_model_id
    if cfg.rag.embedding_endpoint_name or not (cfg.capabilities.inference and cfg.inference.embeddings.enabled):
        return None
    return cfg.inference.embeddings.model_id


def _check_embedding_experiments(cfg: EnvironmentConfig) -> None:
    """An embedding A/B needs an index per arm (not Kendra), the control on today's model, a place to run the others."""
    running = []
    for exp_name, exp in cfg.experiments.items():
        if exp.kind != "embedding-ab":
            continue
        where = f"experiments.{exp_name}"
        if cfg.vector_store.backend == "kendra":
            raise ValueError(f"{where}.kind: embedding-ab needs one vector index per arm, and vector_store.backend kendra "
                             "ranks text with its own model; use opensearch-serverless or aurora-pgvector")
        if not cfg.capabilities.rag:
            raise ValueError(f"{where}: an embedding-ab experiment needs capabilities.rag (the index and queries it splits)")
        running.append(exp_name)
        lowered = [a.name.lower() for a in exp.arms]
        if len(set(lowered)) != len(lowered):
            raise ValueError(f"{where}.arms: arm names name indexes and endpoints, so they must differ in lower case, got "
                             f"{[a.name for a in exp.arms]}")
        control = exp.arms[0]
        today = current_embedding_model(cfg)
        if today is not None and control.model != today:
            raise ValueError(f"{where}.arms.{control.name}.model: the control arm serves the current index, embedded by "
                             f"{today}; got {control.model!r}")
        for arm in exp.arms[1:]:
            at = f"{where}.arms.{arm.name}"
            if arm.model.startswith("cohere."):
                raise ValueError(f"{at}.model: {arm.model} is not supported; allowed: amazon.titan-embed-* (Bedrock) or a "
                                 "Hugging Face model served by a SageMaker endpoint of the arm")
            if embedding_arm_source(arm.model) == "sagemaker":
                if not (cfg.capabilities.inference and cfg.inference.embeddings.enabled):
                    raise ValueError(f"{at}.model: {arm.model} runs on a SageMaker embedding endpoint of its own, which needs "
                                     "capabilities.inference and inference.embeddings.enabled")
                name = f"{cfg.name_prefix}-{cfg.inference.embeddings.name}-{arm.name.lower()}"
                if len(name) > 63:
                    raise ValueError(f"{at}: the arm's endpoint name {name!r} is {len(name)} characters; SageMaker allows 63, "
                                     "shorten the arm name")
            if cfg.vector_store.backend == "aurora-pgvector":
                table = f"rag_chunks_{arm.name.lower().replace('-', '_')}"
                if len(table) > 55:
                    raise ValueError(f"{at}: the arm's table {table!r} is over 55 characters; shorten the arm name")
    active = [n for n in running if cfg.experiments[n].winner is None]
    if len(active) > 1:
        raise ValueError(f"experiments: {', '.join(active)} are all embedding A/B tests; one runs at a time (each "
                         "doubles ingestion into its own indexes)")


def _check_inference(cfg: EnvironmentConfig) -> None:
    """Container settings, sizing, timeouts, model sources and the embedding dimension."""
    inf, where = cfg.inference, "inference.llm"
    for v in cfg.llm_variants():
        at = where if v.name == "primary" and len(inf.llm.variants) == 1 else f"{where}.variants.{v.name}"
        try:
            env = serving.validate_settings(v.container, v.settings)
        except ValueError as exc:
            raise ValueError(f"{at}.settings: {exc}") from None
        facts = cfg.instance(v.instance_type)
        neuron = v.container in serving.NEURON_CONTAINERS
        if facts is not None and (facts.accelerator == "neuron") != neuron and facts.accelerator != "none":
            want = "ml.inf2.*" if neuron else "an NVIDIA GPU type (ml.g5, g6, g6e, p4d, p5)"
            raise ValueError(f"{at}.instance_type: container {v.container} needs {want}, got {v.instance_type}")
        tp_var = serving.TP_VARIABLE[v.container]
        if tp_var in env and env[tp_var] != str(v.tensor_parallel_degree) and env[tp_var] != "max":
            raise ValueError(f"{at}.settings.{tp_var}: {env[tp_var]} differs from tensor_parallel_degree "
                             f"{v.tensor_parallel_degree}; set tensor_parallel_degree only")
        params, dtype = v.model.size()
        if v.model.source == "model-package" and v.model.use_case not in cfg.fine_tuning.use_cases:
            raise ValueError(f"{at}.model.use_case: {v.model.use_case!r} is not a fine-tuning use case; "
                             f"allowed: {', '.join(sorted(cfg.fine_tuning.use_cases))}")
        if params is None:
            raise ValueError(f"{at}.model.params_billion: {v.model.base_model!r} is not in the known-models table; "
                             f"declare params_billion and dtype so synth can check that it fits")
        if facts is not None:
            quant = env.get("OPTION_QUANTIZE") or env.get("HF_MODEL_QUANTIZE") or env.get("SM_VLLM_QUANTIZATION")
            if quant in ("fp8",):
                dtype = "fp8"
            util = float(env.get("OPTION_GPU_MEMORY_UTILIZATION") or env.get("SM_VLLM_GPU_MEMORY_UTILIZATION") or 0.9)
            try:
                serving.check_sizing(where=at, instance=facts, params_billion=params, dtype=dtype,
                                     tp=v.tensor_parallel_degree, memory_utilization=util)
            except ValueError as exc:
                raise ValueError(str(exc)) from None
        loading = env.get("OPTION_MODEL_LOADING_TIMEOUT")
        if loading is None and v.container.startswith("djl-"):
            loading = str(serving.LMI_DEFAULT_LOADING_TIMEOUT)
        if loading is not None and inf.llm.health_check_timeout_seconds < int(loading):
            raise ValueError(f"{where}.health_check_timeout_seconds: {inf.llm.health_check_timeout_seconds} s is shorter "
                             f"than the model loading timeout {loading} s (OPTION_MODEL_LOADING_TIMEOUT); "
                             f"set it to at least {loading}")
    scaling, asyncc = inf.llm.scaling, inf.llm.async_inference
    if scaling.mode == "scale-to-zero" and (len(inf.llm.variants) > 1 or asyncc.enabled):
        raise ValueError(f"{where}.scaling.mode: scale-to-zero (inference components) supports one variant and no "
                         f"async_inference; got {len(inf.llm.variants)} variant(s), async {asyncc.enabled}")
    if inf.llm.schedule.enabled and (scaling.mode == "scale-to-zero" or asyncc.enabled):
        why = "scaling.mode is scale-to-zero" if scaling.mode == "scale-to-zero" else "async_inference scales from zero"
        raise ValueError(f"{where}.schedule.enabled: the endpoint already idles at zero instances ({why}); "
                         "a stop/start schedule is only for instance-based real-time endpoints")
    if inf.embeddings.enabled and inf.embeddings.schedule.enabled and inf.embeddings.serverless:
        raise ValueError("inference.embeddings.schedule.enabled: a serverless endpoint already idles at zero; "
                         "a stop/start schedule is only for instance-based endpoints (serverless: false)")
    if asyncc.enabled and any(v.shadow for v in inf.llm.variants.values()):
        raise ValueError(f"{where}.async_inference: an asynchronous endpoint cannot carry a shadow variant")
    emb = inf.embeddings
    if emb.enabled:
        try:
            serving.validate_settings(emb.container, emb.settings)
        except ValueError as exc:
            raise ValueError(f"inference.embeddings.settings: {exc}") from None
        dim = emb.resolved_dimension()
        if dim is None:
            raise ValueError(f"inference.embeddings.dimension: {emb.model_id!r} is not in the known-models table; "
                             f"declare its output dimension")
        rag_uses_it = cfg.rag.embedding_provider == "sagemaker" and not cfg.rag.embedding_endpoint_name
        if rag_uses_it and dim != cfg.vector_store.dimension:
            raise ValueError(f"inference.embeddings.dimension: {emb.model_id} returns {dim} dimensions but "
                             f"vector_store.dimension is {cfg.vector_store.dimension}; they must match")


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


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key repeated in one mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node, deep=False):  # noqa: ANN001 - PyYAML's signature
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{self.name}: line {line}: duplicate key {key!r} (first at line {seen[key]}); "
                    "a repeated key would silently override the first"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, name: str = "<config>") -> Any:
    """Parse config YAML, refusing duplicate keys."""
    loader = _UniqueKeyLoader(text)
    loader.name = name
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_config(path: str | Path | None = None) -> PlatformConfig:
    """Load and validate the platform config file (default ``config/environments.yaml``)."""
    path = Path(path) if path else DEFAULT_CONFIG_PATH
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}); save the file as UTF-8"
        ) from None
    try:
        raw = parse_yaml(text, str(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(raw)
