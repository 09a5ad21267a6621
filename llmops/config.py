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


class CapabilitiesConfig(_Model):
    data_prep: bool = True
    prompt_catalog: bool = True
    rag: bool = True
    fine_tuning: bool = True


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


class WorkteamConfig(_Model):
    """The private Ground Truth workteam (Cognito user pool) that labels curated text."""

    enabled: bool = True
    description: str = Field("LLMOps data labeling team", min_length=1, max_length=200)
    # Optional SNS notifications of new labeling tasks to workers.
    notify_workers: bool = False


class DataPrepConfig(_Model):
    """Data preparation: Textract features, PII redaction, optional custom classifier, workteam."""

    textract_features: tuple[Literal["LAYOUT", "TABLES", "FORMS"], ...] = ("LAYOUT", "TABLES")
    pii_entity_types: tuple[str, ...] = ("ALL",)
    pii_min_score: float = Field(0.5, ge=0.0, le=1.0)
    mask: str = Field("[{type}]", min_length=1, max_length=40)
    custom_classifier_endpoint_arn: str | None = None
    extraction_timeout_minutes: int = Field(120, ge=5, le=1440)
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
    fine_tuning: FineTuningConfig = FineTuningConfig()
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
        if self.name != "dev" and not self.account:
            raise ValueError("account is required outside dev (pin staging and prod to an account)")
        return self

    @property
    def is_prod(self) -> bool:
        return self.name == "prod"


class PlatformConfig(_Model):
    project: str
    environments: dict[str, EnvironmentConfig]

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
    extra = set(raw) - {"project", "defaults", "environments"}
    if extra:
        raise ConfigError(f"config: unknown top-level field(s) {sorted(extra)}; allowed: project, defaults, environments")
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
    return PlatformConfig(project=project, environments=parsed)


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
