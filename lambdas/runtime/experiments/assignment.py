"""Sticky assignment of a request to an experiment arm, and the experiments the query function runs.

``assign`` is the one hash -> arm function of the platform: the query function uses it for model
and embedding arms, the prompt catalog client for an alias split between two versions. A unit
(a session or user id, else the request id) hashed with the experiment's salt lands on a point of
[0, 1); the arms own consecutive slices of that interval in proportion to their weights. The same
unit always gets the same arm, independent experiments (different salts) split independently, and
an arm of weight 0 is never chosen.

``EXPERIMENTS`` (JSON, written by ``llmops/stacks/rag.py`` from config) is a list of
``{"name", "kind", "winner", "arms": [{"name", "weight", "variant"?, "model"?, "dimension"?,
"version"?, "environment"?}]}``; ``environment`` holds the function environment variables that
differ for that arm (an embedding arm's index and embedding model).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

KINDS = ("model-ab", "model-shadow", "prompt-ab", "embedding-ab")
_SCALE = float(2**64)


def unit_point(unit: str, salt: str = "") -> float:
    """Where ``unit`` falls in [0, 1) for the experiment ``salt``: the first 8 bytes of SHA-256, uniform."""
    digest = hashlib.sha256(f"{salt}\x1f{unit}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def assign(unit: str, weights: Sequence[tuple[str, float]], *, salt: str = "") -> str:
    """The arm (name) ``unit`` belongs to; ``weights`` are (arm, weight >= 0) pairs, at least one weight > 0."""
    if not weights:
        raise ValueError("weights: at least one arm is needed")
    total = 0.0
    for name, weight in weights:
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weights: arm {name!r} has weight {weight!r}; weights are finite numbers >= 0")
        total += weight
    if total <= 0:
        raise ValueError("weights: every arm has weight 0; at least one must take traffic")
    target = unit_point(unit, salt) * total
    running = 0.0
    for name, weight in weights:
        running += weight
        if target < running:
            return name
    # Rounding can leave the point just past the last sum: it belongs to the last arm that takes traffic.
    return next(name for name, weight in reversed(weights) if weight > 0)


@dataclass(frozen=True)
class Arm:
    name: str
    weight: float = 0.0
    variant: str | None = None
    model: str | None = None
    dimension: int | None = None
    version: int | None = None
    shadow: bool = False
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    name: str
    kind: str
    arms: tuple[Arm, ...]
    winner: str | None = None

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def assign(self, unit: str) -> Arm:
        """The arm answering ``unit``; a promoted winner answers everyone."""
        if self.winner is not None:
            return self.arm(self.winner)
        if self.kind == "model-shadow":  # one production arm answers; SageMaker copies to the shadow itself
            return next(a for a in self.arms if not a.shadow)
        return self.arm(assign(unit, [(a.name, a.weight) for a in self.arms], salt=self.name))


def _arm(raw: Any, where: str) -> Arm:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise ValueError(f"{where}: an arm is an object with a non-empty 'name'")
    weight = raw.get("weight", 0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 100:
        raise ValueError(f"{where}.weight: a number from 0 to 100, got {weight!r}")
    env = raw.get("environment") or {}
    if not isinstance(env, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ValueError(f"{where}.environment: an object of string values")
    dimension = raw.get("dimension")
    if dimension is not None and (isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1):
        raise ValueError(f"{where}.dimension: a positive integer, got {dimension!r}")
    return Arm(name=raw["name"], weight=float(weight), variant=raw.get("variant"), model=raw.get("model"),
               dimension=dimension, version=raw.get("version"), shadow=bool(raw.get("shadow", False)),
               environment=dict(env))


def parse_experiments(text: str | None) -> tuple[Experiment, ...]:
    """The ``EXPERIMENTS`` variable; empty or unset means none. Errors name the entry and field."""
    if not text:
        return ()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"EXPERIMENTS is not JSON: {exc}") from None
    if not isinstance(raw, list):
        raise ValueError("EXPERIMENTS must be a JSON list of experiments")
    out = []
    for i, entry in enumerate(raw):
        where = f"EXPERIMENTS[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ValueError(f"{where}: an experiment is an object with a 'name'")
        where = f"EXPERIMENTS.{entry['name']}"
        if entry.get("kind") not in KINDS:
            raise ValueError(f"{where}.kind: one of {', '.join(KINDS)}, got {entry.get('kind')!r}")
        arms = entry.get("arms")
        if not isinstance(arms, list) or not arms:
            raise ValueError(f"{where}.arms: a non-empty list")
        parsed = tuple(_arm(a, f"{where}.arms[{j}]") for j, a in enumerate(arms))
        winner = entry.get("winner")
        if winner is not None and winner not in {a.name for a in parsed}:
            raise ValueError(f"{where}.winner: {winner!r} is not an arm")
        if winner is None and entry["kind"] != "model-shadow" and sum(a.weight for a in parsed) <= 0:
            raise ValueError(f"{where}.arms: every weight is 0")
        if entry["kind"] == "model-shadow" and sum(not a.shadow for a in parsed) != 1:
            raise ValueError(f"{where}.arms: a shadow test has exactly one production arm")
        out.append(Experiment(entry["name"], entry["kind"], parsed, winner))
    return tuple(out)


def experiments_from_env(environ: Mapping[str, str]) -> tuple[Experiment, ...]:
    return parse_experiments(environ.get("EXPERIMENTS"))
