"""Cost rules synth enforces: caps on expensive choices and ``cost.max_idle_per_day``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops.config import EXPENSIVE_FAMILIES, EXPENSIVE_TYPES, ConfigError
from llmops.cost.estimate import IDLE, daily_cost_of_instance, estimate


def _instances(env: Any) -> list[tuple[str, str, int, str]]:
    """``(field, instance type, count, price service)`` for every instance choice in the config."""
    where = f"environments.{env.name}"
    ft = env.fine_tuning
    found = [
        (f"{where}.instances.training", env.instances.training.type, env.instances.training.count, "sagemaker-training"),
        (f"{where}.instances.inference", env.instances.inference.type, env.instances.inference.count, "sagemaker-hosting"),
    ]
    if env.capabilities.fine_tuning:
        if ft.instance_type or ft.instance_count:
            found.append((f"{where}.fine_tuning.instance_type", ft.instance_type or env.instances.training.type,
                          ft.instance_count or env.instances.training.count, "sagemaker-training"))
        found.append((f"{where}.fine_tuning.evaluation_instance_type", ft.evaluation_instance_type, 1, "sagemaker-training"))
    inference = getattr(env, "inference", None)
    for name, endpoint in (getattr(inference, "llm_endpoints", None) or {}).items():  # the inference capability
        for variant in getattr(endpoint, "variants", ()) or ():
            found.append((f"{where}.inference.llm_endpoints.{name}", variant.instance_type,
                          getattr(variant, "max_instances", 1) or 1, "sagemaker-hosting"))
    return found


def check_cost_policy(env: Any, *, cdk_out: Path | None = None) -> None:
    """Raise ``ConfigError`` naming the field and the daily cost when the config breaks a cost rule."""
    allow = set(env.cost.allow)
    where = f"environments.{env.name}"
    region = env.region or "us-east-1"
    for field, instance_type, count, service in _instances(env):
        family = instance_type.split(".")[1] if instance_type.count(".") >= 2 else ""
        expensive = family in EXPENSIVE_FAMILIES or instance_type in EXPENSIVE_TYPES
        if expensive and family not in allow and instance_type not in allow:
            per_day = daily_cost_of_instance(instance_type, 1, region, service=service)
            raise ConfigError(
                f"{field}: {instance_type} costs about ${per_day:,.2f} a day per instance; add "
                f"'{family if family in EXPENSIVE_FAMILIES else instance_type}' to {where}.cost.allow to use it"
            )
        if count > env.cost.max_instance_count and "high-instance-count" not in allow:
            per_day = daily_cost_of_instance(instance_type, count, region, service=service)
            raise ConfigError(
                f"{field}: {count} x {instance_type} (about ${per_day:,.2f} a day) exceeds "
                f"{where}.cost.max_instance_count ({env.cost.max_instance_count}); raise it or add "
                f"'high-instance-count' to {where}.cost.allow"
            )
    if env.capabilities.rag and env.vector_store.backend == "kendra" and not env.rag.kendra.index_id and "kendra" not in allow:
        hourly = 1.125 if env.rag.kendra.edition == "DEVELOPER_EDITION" else 1.40
        raise ConfigError(
            f"{where}.vector_store.backend: a Kendra {env.rag.kendra.edition} index costs about "
            f"${hourly * 24:,.2f} a day; add 'kendra' to {where}.cost.allow to create one"
        )
    limit = env.cost.max_idle_per_day
    if limit is not None:
        est = estimate(env, cdk_out=cdk_out)
        idle = est.total(IDLE)
        if idle > limit:
            top = "; ".join(f"{l.item} ${l.cost:,.2f}" for l in est.largest(IDLE))
            raise ConfigError(
                f"{where}.cost.max_idle_per_day: the idle estimate is ${idle:,.2f} a day, over ${limit:,.2f}; "
                f"largest items: {top} (run `llmops cost {env.name}` for every line)"
            )
