"""The vector store interface every backend implements, and backend selection from the environment.

Each backend class also offers ``from_env(environ)``, which ``store_from_env`` calls. Optional
extras the pipelines use when present: ``document_chunk_ids(document_id)`` (skip re-embedding
unchanged documents) and ``search_text(question, k, filters)`` (retrievers that rank text
themselves, such as Kendra, are queried with the question instead of a vector).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from lambdas.runtime.rag.model import Chunk, Hit

FilterValue = str | int | float | bool

# Backend name (the config's vector_store.backend) -> "module:class"; imported only when chosen.
BACKENDS: dict[str, str] = {
    "aurora-pgvector": "lambdas.runtime.rag.pgvector:PgVectorStore",
    "opensearch-serverless": "lambdas.runtime.rag.opensearch:OpenSearchVectorStore",
    "kendra": "lambdas.runtime.rag.kendra:KendraRetriever",
}


@runtime_checkable
class VectorStore(Protocol):
    """Stores chunks with their vectors and returns the closest ones to a query vector."""

    FILTERABLE_FIELDS: frozenset[str]

    def ensure_schema(self) -> None:
        """Create the index/table if missing; safe to call on every cold start."""

    def upsert(self, document_id: str, chunks: Sequence[Chunk]) -> int:
        """Replace every chunk of ``document_id`` with ``chunks``; returns the number written."""

    def delete_document(self, document_id: str) -> int:
        """Remove every chunk of ``document_id``; returns the number removed."""

    def search(
        self,
        vector: Sequence[float],
        k: int,
        filters: Mapping[str, FilterValue] | None = None,
    ) -> list[Hit]:
        """Top ``k`` chunks by similarity, highest score first, matching every filter exactly.

        Raises ``ValueError`` naming the field when a filter is not in ``FILTERABLE_FIELDS``.
        """


def check_filters(filters: Mapping[str, object] | None, allowed: frozenset[str]) -> dict[str, FilterValue]:
    """Validate a filter mapping against a store's filterable fields; shared by every backend."""
    if not filters:
        return {}
    if not isinstance(filters, Mapping):
        raise ValueError("filters must be an object mapping field names to values")
    unknown = sorted(str(name) for name in filters if name not in allowed)
    if unknown:
        raise ValueError(
            f"unknown filter field(s): {', '.join(unknown)}; filterable fields are: {', '.join(sorted(allowed))}"
        )
    checked: dict[str, FilterValue] = {}
    for name, value in filters.items():
        if not isinstance(value, (str, int, float, bool)):
            raise ValueError(f"filter {name!r} must be a string, number or boolean, got {type(value).__name__}")
        checked[name] = value
    return checked


def store_from_env(environ: Mapping[str, str]) -> VectorStore:
    """Build the backend named by ``VECTOR_STORE_BACKEND``; each backend reads its own variables."""
    backend = environ.get("VECTOR_STORE_BACKEND", "")
    target = BACKENDS.get(backend)
    if target is None:
        raise ValueError(
            f"VECTOR_STORE_BACKEND={backend!r} is not supported; use one of: {', '.join(sorted(BACKENDS))}"
        )
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls.from_env(environ)
