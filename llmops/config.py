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
    "lambda": "LAMBDA",
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


class NagPacksConfig(_Model):
    hipaa: bool = False
    nist_800_53_r5: bool = False


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
    instances: InstancesConfig = InstancesConfig()
    nag_packs: NagPacksConfig = NagPacksConfig()
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
