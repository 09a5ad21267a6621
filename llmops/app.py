"""Builds the CDK app: one LlmOpsStage per selected environment."""

from __future__ import annotations

from aws_cdk import App

from llmops.config import ConfigError, PlatformConfig, load_config
from llmops.stage import LlmOpsStage


def selected_environments(config: PlatformConfig, selector: str | None) -> list[str]:
    """``None``/``all`` -> every environment; ``dev`` or ``dev,prod`` -> those, validated."""
    if selector in (None, "", "all", "*"):
        return list(config.environments)
    names = [n.strip() for n in str(selector).split(",") if n.strip()]
    unknown = [n for n in names if n not in config.environments]
    if unknown:
        raise ConfigError(f"env: unknown environment(s) {unknown}; allowed: {', '.join(config.environments)} or all")
    return names


def build_app(app: App | None = None, *, config: PlatformConfig | None = None, nag: bool = True) -> App:
    app = app or App()
    config = config or load_config(app.node.try_get_context("config"))
    for name in selected_environments(config, app.node.try_get_context("env")):
        LlmOpsStage(app, config.get(name), nag=nag)
    return app
