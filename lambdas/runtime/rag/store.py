"""The vector store interface every backend implements, and backend selection from the environment.

Each backend class also offers ``from_env(environ)``, which ``store_from_env`` calls. Optional
extras the pipelines use when present: ``document_state(document_id)`` (what the index holds for
a document: skip re-embedding unchanged documents, order out-of-order S3 events) and
``search_text(question, k, filters)`` (retrievers that rank text themselves, such as Kendra, are
queried with the question instead of a vector).

Filters are defined once here (``FILTER_FIELDS``: name -> type) and checked by ``check_filters``
for every backend, so ``{"page": "1"}`` is refused everywhere instead of matching on one backend
and not on another.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from lambdas.runtime.rag.model import Chunk, Hit  # noqa: F401 (re-exported)

FilterValue = str | int

# Every filterable field and the one JSON type its values have, for every backend. A backend
# offers all of them or a subset (Kendra); a value of another type is refused, never coerced.
FILTER_FIELDS: dict[str, type] = {
    "document_id": str,
    "source_bucket": str,
    "source_key": str,
    "source_version": str,
    "page": int,
    "language": str,
    "document_type": str,
}


class StoreUnavailable(Exception):
    """The vector store did not accept a connection in time (e.g. Aurora resuming): HTTP 503, SQS retry."""


class Superseded(Exception):
    """The index holds a document written by a later S3 event than the one being applied."""


@dataclass(frozen=True)
class StoredDocument:
    """What the index holds for one document."""

    chunk_ids: frozenset[str]
    version: str | None  # the S3 version id indexed (None: unversioned or a local file)
    sequencer: str | None  # the S3 event sequencer that wrote it


def sequencer_is_older(candidate: str | None, held: str | None) -> bool:
    """True when event ``candidate`` happened before ``held`` (both for the same key).

    S3 sequencers are hex strings of varying length: right-pad the shorter with zeros, then
    compare lexicographically (as S3 documents). Unknown on either side: not older.
    """
    if not candidate or not held:
        return False
    width = max(len(candidate), len(held))
    return candidate.upper().ljust(width, "0") < held.upper().ljust(width, "0")

# Backend name (the config's vector_store.backend) -> "module:class"; imported only when chosen.
BACKENDS: dict[str, str] = {
    "aurora-pgvector": "lambdas.runtime.rag.pgvector:PgVectorStore",
    "opensearch-serverless": "lambdas.runtime.rag.opensearch:OpenSearchVectorStore",
    "kendra": "lambdas.runtime.rag.kendra:KendraRetriever",
}


class VectorStore(Protocol):
    """Stores chunks with their vectors and returns the closest ones to a query vector."""

    FILTERABLE_FIELDS: frozenset[str]

    def ensure_schema(self) -> None:
        """Create the index/table if missing; safe to call on every cold start."""

    def upsert(self, document_id: str, chunks: Sequence[Chunk], *, sequencer: str | None = None) -> int:
        """Replace every chunk of ``document_id`` with ``chunks``; returns the number written.

        Raises ``Superseded`` when the stored chunks were written by a later event than ``sequencer``.
        """

    def delete_document(self, document_id: str, *, sequencer: str | None = None) -> int:
        """Remove every chunk of ``document_id``; returns the number removed.

        Raises ``Superseded`` when the stored chunks were written by a later event than ``sequencer``.
        """

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
        expected = FILTER_FIELDS.get(name, str)
        # bool is an int in Python but not in JSON: {"page": true} is as wrong as {"page": "1"}.
        if not isinstance(value, expected) or isinstance(value, bool):
            wanted = "an integer" if expected is int else "a string"
            raise ValueError(f"filter {name!r} must be {wanted}, got {type(value).__name__} {value!r:.40}")
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
