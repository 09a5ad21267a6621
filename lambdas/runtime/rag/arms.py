"""Embedding A/B arms: one (vector store, embedder) pair per arm, built from the function's environment.

An arm's ``environment`` in ``EXPERIMENTS`` holds only what differs from the function's own
variables (its index ``AOSS_INDEX`` or table ``PG_TABLE``, ``EMBEDDING_DIMENSION`` and its
embedding model's variables); the control arm has none and shares the function's store and embedder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lambdas.runtime.experiments.assignment import Experiment


def running_embedding_experiment(experiments: Sequence[Experiment]) -> Experiment | None:
    """The embedding A/B that splits queries and dual-writes ingestion (a promoted one does neither)."""
    return next((e for e in experiments if e.kind == "embedding-ab" and e.winner is None), None)


def arm_backends(
    environ: Mapping[str, str],
    experiment: Experiment,
    *,
    store: Any,
    embedder: Any,
    store_factory: Callable[[Mapping[str, str]], Any],
    embedder_factory: Callable[[Mapping[str, str]], Any],
) -> dict[str, tuple[Any, Any]]:
    """Arm name -> (store, embedder); an arm without its own variables reuses ``store`` and ``embedder``."""
    out: dict[str, tuple[Any, Any]] = {}
    for arm in experiment.arms:
        if not arm.environment:
            out[arm.name] = (store, embedder)
            continue
        env = {**environ, **arm.environment}
        out[arm.name] = (store_factory(env), embedder_factory(env))
    return out
