"""Shared test helpers: build stages the way app.py does, without bundling or cdk-nag."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from aws_cdk import App
from aws_cdk.assertions import Template

from llmops.config import DEFAULT_CONFIG_PATH, PlatformConfig, parse_config

REPO_ROOT = Path(__file__).resolve().parent.parent
CDK_CONTEXT: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def raw_config() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


def config_with(env_name: str = "dev", overrides: dict[str, Any] | None = None) -> PlatformConfig:
    """The repo's config with ``overrides`` deep-merged into one environment."""
    raw = raw_config()
    env = raw["environments"].setdefault(env_name, {}) or {}

    def merge(base: dict, extra: dict) -> dict:
        for k, v in extra.items():
            if isinstance(v, dict) and isinstance(base.get(k), dict):
                merge(base[k], v)
            else:
                base[k] = copy.deepcopy(v)
        return base

    raw["environments"][env_name] = merge(env, overrides or {})
    return parse_config(raw)


def make_app(outdir: str | None = None, **context: Any) -> App:
    """An App with the project's feature flags; asset bundling skipped (unit tests)."""
    return App(outdir=outdir, context={**CDK_CONTEXT, "aws:cdk:bundling-stacks": [], **context})


@lru_cache(maxsize=16)
def _stage(env_name: str, overrides_json: str, nag: bool):
    from llmops.stage import LlmOpsStage

    config = config_with(env_name, json.loads(overrides_json))
    app = make_app()
    return LlmOpsStage(app, config.get(env_name), nag=nag)


def synth_stage(env_name: str = "dev", config_overrides: dict[str, Any] | None = None, nag: bool = False):
    """An LlmOpsStage for ``env_name`` (cached per arguments: build once, assert many)."""
    return _stage(env_name, json.dumps(config_overrides or {}, sort_keys=True), nag)


_templates: dict[int, Template] = {}


def template_of(stack) -> Template:
    key = id(stack)
    if key not in _templates:
        _templates[key] = Template.from_stack(stack)
    return _templates[key]
