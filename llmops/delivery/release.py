"""The release manifest: what an environment serves besides the code, pinned once and promoted unchanged.

``release.json`` pins, per fine-tuning use case, the approved model package (ARN, version and the
evaluation metrics it was approved on); per prompt, the catalog version (and content hash) each
alias points at; the embedding model and the index it was built with; the serving image tags.
``llmops release build --from dev`` writes it from the dev account; ``llmops release check`` and
synth validate it offline. The same file is deployed to every stage.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmops.config import REPO_ROOT, ConfigError, EnvironmentConfig, PlatformConfig

DEFAULT_RELEASE_PATH = REPO_ROOT / "release.json"
SCHEMA_VERSION = 1
_PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:(\d{12}):model-package/([a-zA-Z0-9-]{1,63})/(\d+)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ModelPin(_Model):
    model_package_arn: str
    version: int = Field(ge=1)
    approval_status: Literal["Approved", "PendingManualApproval", "Rejected"]
    metrics: dict[str, float] = {}

    @model_validator(mode="after")
    def _arn(self) -> "ModelPin":
        match = _PACKAGE_ARN.match(self.model_package_arn)
        if not match:
            raise ValueError(f"model_package_arn: not a versioned SageMaker model package ARN: {self.model_package_arn!r}")
        if int(match.group(3)) != self.version:
            raise ValueError(f"version: {self.version} differs from the ARN's version {match.group(3)}")
        return self

    @property
    def account(self) -> str:
        return _PACKAGE_ARN.match(self.model_package_arn).group(1)  # type: ignore[union-attr]

    @property
    def group(self) -> str:
        return _PACKAGE_ARN.match(self.model_package_arn).group(2)  # type: ignore[union-attr]


class PromptPin(_Model):
    """An alias of one prompt and the catalog version it points at, with that version's content hash."""

    version: int = Field(ge=1)
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class EmbeddingPin(_Model):
    model: str = Field(min_length=1, max_length=200)
    dimension: int = Field(ge=2, le=16000)
    index: str = Field(min_length=1, max_length=128)


class ReleaseManifest(_Model):
    schema_version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    source_environment: str
    created: str
    models: dict[str, ModelPin] = {}
    # prompt id -> alias -> pin
    prompts: dict[str, dict[str, PromptPin]] = {}
    embedding: EmbeddingPin | None = None
    images: dict[str, str] = {}

    @field_validator("images")
    @classmethod
    def _images(cls, value: dict[str, str]) -> dict[str, str]:
        for name, uri in value.items():
            if not re.fullmatch(r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+:[A-Za-z0-9._-]+", uri):
                raise ValueError(f"images.{name}: not an ECR image URI with a tag: {uri!r}")
        return value


class ReleaseError(ValueError):
    """The manifest is malformed or cannot be deployed; every problem names its entry."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("release manifest refused:\n  " + "\n  ".join(problems))


def parse_release(raw: Any, *, source: str = "release.json") -> ReleaseManifest:
    try:
        return ReleaseManifest.model_validate(raw)
    except ValidationError as err:
        problems = []
        for item in err.errors():
            loc = ".".join(str(p) for p in item["loc"] if not str(p).startswith("function-after"))
            problems.append(f"{source}: {loc or '(top level)'}: {item['msg'].removeprefix('Value error, ')}")
        raise ReleaseError(problems) from None


def load_release(path: str | Path = DEFAULT_RELEASE_PATH) -> ReleaseManifest:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReleaseError([f"{path}: no release manifest (write one with `llmops release build --from dev`)"]) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReleaseError([f"{path}: not UTF-8 JSON: {exc}"]) from None
    return parse_release(raw, source=path.name)


def deployment_problems(
    manifest: ReleaseManifest, config: PlatformConfig, *, prompt_hashes: dict[str, str] | None = None
) -> list[str]:
    """What stops the manifest from being deployed to the environments of ``config``.

    ``prompt_hashes`` (prompt id -> content hash of ``prompts/<id>.yaml``) is given by
    ``llmops release check``; synth, which must not load the prompt runtime, leaves it out.
    """
    problems: list[str] = []
    if manifest.source_environment not in config.environments:
        problems.append(f"source_environment: unknown environment {manifest.source_environment!r}")
        return problems
    source = config.get(manifest.source_environment)
    for use_case, pin in manifest.models.items():
        where = f"models.{use_case}"
        if use_case not in source.fine_tuning.use_cases:
            problems.append(f"{where}: no such fine-tuning use case in {manifest.source_environment}; "
                            f"allowed: {', '.join(source.fine_tuning.use_cases)}")
        if pin.approval_status != "Approved":
            problems.append(f"{where}: model package {pin.model_package_arn} is {pin.approval_status}, not Approved")
        expected_group = f"{source.name_prefix}-{use_case}"
        if pin.group != expected_group:
            problems.append(f"{where}: package group {pin.group!r} is not the use case's group {expected_group!r}")
        thresholds = source.fine_tuning.thresholds
        for metric, minimum in (("rouge_l", thresholds.min_rouge_l), ("bleu", thresholds.min_bleu),
                                ("exact_match", thresholds.min_exact_match), ("token_f1", thresholds.min_token_f1)):
            if minimum and metric in pin.metrics and pin.metrics[metric] < minimum:
                problems.append(f"{where}.metrics.{metric}: {pin.metrics[metric]} is below the threshold {minimum}")
    if prompt_hashes is not None:
        for prompt_id, aliases in manifest.prompts.items():
            if prompt_id not in prompt_hashes:
                problems.append(f"prompts.{prompt_id}: no prompts/{prompt_id}.yaml in the repository")
                continue
            for alias, pin in aliases.items():
                if pin.content_hash != prompt_hashes[prompt_id]:
                    problems.append(
                        f"prompts.{prompt_id}.{alias}: version {pin.version} (hash {pin.content_hash[:12]}) is not the "
                        f"content of prompts/{prompt_id}.yaml (hash {prompt_hashes[prompt_id][:12]})"
                    )
    if manifest.embedding is not None:
        for name, env in config.environments.items():
            if env.capabilities.rag and env.vector_store.dimension != manifest.embedding.dimension:
                problems.append(
                    f"embedding.dimension: {manifest.embedding.model} gives {manifest.embedding.dimension} values but "
                    f"environments.{name}.vector_store.dimension is {env.vector_store.dimension}"
                )
    return problems


def check_release_for(env: EnvironmentConfig, manifest: ReleaseManifest, config: PlatformConfig) -> None:
    """Synth-time check: raise ``ConfigError`` naming the entry."""
    problems = deployment_problems(manifest, config)
    if problems:
        raise ConfigError(f"environments.{env.name}: " + str(ReleaseError(problems)))


def image_tag_pins(manifest: ReleaseManifest) -> dict[str, tuple[str, str]]:
    """Container family -> (repository, tag) of the manifest's serving images."""
    out = {}
    for name, uri in manifest.images.items():
        path = uri.split("/", 1)[1]
        repository, _, tag = path.rpartition(":")
        out[name] = (repository, tag)
    return out


def environment_problems(manifest: ReleaseManifest, env: EnvironmentConfig) -> list[str]:
    """What stops one environment's stacks from deploying the manifest (synth-time, offline)."""
    from llmops.inference import image_table

    problems: list[str] = []
    for v in env.llm_variants():
        if v.model.source != "model-package":
            continue
        pin = manifest.models.get(v.model.use_case)
        if pin is None:
            problems.append(f"models.{v.model.use_case}: no pin for the use case that inference.llm variant {v.name} serves "
                            f"(model.source model-package); pinned: {', '.join(manifest.models) or 'none'}")
        elif pin.approval_status != "Approved":
            problems.append(f"models.{v.model.use_case}: model package {pin.model_package_arn} is {pin.approval_status}, not Approved")
    families = image_table()["families"]
    for name, (repository, _tag) in image_tag_pins(manifest).items():
        if name not in families:
            problems.append(f"images.{name}: not a serving container family; allowed: {', '.join(sorted(families))}")
        elif families[name]["repository"] != repository:
            problems.append(f"images.{name}: repository {repository!r} is not the {name} container's "
                            f"{families[name]['repository']!r}; only the tag may differ")
    if manifest.embedding is not None and env.capabilities.rag and env.vector_store.dimension != manifest.embedding.dimension:
        problems.append(f"embedding.dimension: {manifest.embedding.model} gives {manifest.embedding.dimension} values but "
                        f"vector_store.dimension is {env.vector_store.dimension}")
    if manifest.embedding is not None and env.capabilities.rag and env.rag.embedding_provider == "bedrock" \
            and manifest.embedding.model != env.rag.embedding_model_id:
        # A Bedrock model is named in the functions' environment, not served by a stack here: config must agree.
        problems.append(f"embedding.model: the release pins {manifest.embedding.model} but rag.embedding_model_id is "
                        f"{env.rag.embedding_model_id}; the index was built with the pinned model")
    return problems


def served_images(env: EnvironmentConfig) -> dict[str, str]:
    """Container family -> image URI (the committed table's tag) of what the environment serves: the release pins them."""
    from llmops.inference import image_table

    table = image_table()["families"]
    families = set()
    if env.capabilities.inference:
        llm = env.inference.llm
        families |= {llm.container} | {v.container or llm.container for v in llm.variants.values()}
        if env.inference.embeddings.enabled:
            families.add(env.inference.embeddings.container)
    region = env.region or "us-east-1"
    out = {}
    for family in sorted(families):
        row = table[family]
        registry = row["registries"].get(region)
        if registry is None:
            raise ConfigError(f"environments.{env.name}.region: no {family} image registry in {region}")
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        out[family] = f"{registry}.dkr.ecr.{region}.{suffix}/{row['repository']}:{row['tag']}"
    return out


def embedding_model_pin(env: EnvironmentConfig, manifest: ReleaseManifest | None) -> str | None:
    """The embedding model the environment's own embeddings endpoint serves under a release, or None (config's)."""
    if manifest is None or manifest.embedding is None:
        return None
    if env.rag.embedding_provider != "sagemaker" or env.rag.embedding_endpoint_name:
        return None  # Bedrock (checked above) or an endpoint made elsewhere
    return manifest.embedding.model


def release_for_environment(env: EnvironmentConfig) -> ReleaseManifest | None:
    """The manifest ``environments.<name>.release`` names, checked for this environment; None without one."""
    if env.release is None:
        return None
    path = Path(env.release) if Path(env.release).is_absolute() else REPO_ROOT / env.release
    try:
        manifest = load_release(path)
    except ReleaseError as err:
        raise ConfigError(f"environments.{env.name}.release: {err}") from None
    problems = environment_problems(manifest, env)
    if problems:
        raise ConfigError(f"environments.{env.name}.release: {ReleaseError([f'{path.name}: {p}' for p in problems])}")
    return manifest
