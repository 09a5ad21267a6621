"""Value types passed between loaders, chunking, embedders, vector stores and the query pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Metadata keys every chunk carries so an answer can cite its source.
SOURCE_FIELDS = (
    "source_bucket",
    "source_key",
    "source_version",
    "page",
    "start_offset",
    "end_offset",
    "chunk_index",
    "content_hash",
)
# Chunk metadata naming the S3 object version that was indexed and the S3 event sequencer that
# wrote it: out-of-order events are ordered against these (store.py, s3_ingest.py).
INDEXED_VERSION = "indexed_version"
INDEXED_SEQUENCER = "indexed_sequencer"
# Optional user metadata copied from the document onto each chunk and usable as a filter.
# No tenant field: one deployment serves one tenant (docs/rag.md, "Tenancy").
USER_FIELDS = ("language", "document_type")


@dataclass(frozen=True)
class Chunk:
    """One retrievable passage of a document.

    ``metadata`` holds the ``SOURCE_FIELDS`` plus any ``USER_FIELDS``; ``vector`` is filled in by
    the embedder before the chunk is written to a store, and by stores on the way back out only
    when asked.
    """

    chunk_id: str
    document_id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    vector: Sequence[float] | None = None  # a tuple, or a float32 array.array from ingestion


@dataclass(frozen=True)
class Hit:
    """A chunk returned by a search, with the store's similarity score (higher is closer)."""

    chunk: Chunk
    score: float
