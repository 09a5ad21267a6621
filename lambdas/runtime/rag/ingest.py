"""Ingestion: load -> chunk -> embed in batches -> replace the document's chunks in the store.

One code path for the ``rag_ingest`` Lambda (documents from S3) and ``llmops local ingest``
(files on disk). Nothing is deleted or overwritten until the new chunks are ready, so a bad
new version of a document never loses the chunks already indexed.
"""

from __future__ import annotations

import dataclasses
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from lambdas.runtime.rag.chunking import TokenChunker
from lambdas.runtime.rag.embedders import Embedder, EmbeddingError
from lambdas.runtime.rag.loaders import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    DocumentRejected,
    LoadedDocument,
    SourceRef,
    load_document,
)
from lambdas.runtime.rag.model import Chunk
from lambdas.runtime.rag.store import StoredDocument, Superseded, VectorStore, sequencer_is_older


@dataclass(frozen=True)
class IngestOutcome:
    document_id: str
    status: str  # indexed | unchanged | deleted | superseded
    chunks: int = 0
    embed_seconds: float = 0.0
    store_seconds: float = 0.0


class IngestionPipeline:
    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        chunker: TokenChunker | None = None,
        *,
        embed_batch_size: int = 64,
        max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.chunker = chunker or TokenChunker()
        self.embed_batch_size = embed_batch_size
        self.max_document_bytes = max_document_bytes

    def ingest_bytes(self, document_id: str, name: str, data: bytes, source: SourceRef) -> IngestOutcome:
        """Raises ``DocumentRejected`` for empty, binary, corrupt, unsupported or oversized documents."""
        document = load_document(name, data, max_bytes=self.max_document_bytes)
        return self.ingest_document(document_id, document, source)

    def ingest_document(self, document_id: str, document: LoadedDocument, source: SourceRef) -> IngestOutcome:
        try:
            chunks = self.chunker.split(document_id, document, source)
        except Exception as exc:  # noqa: BLE001 - splitting is deterministic: this document will never chunk
            raise DocumentRejected("unchunkable", f"chunking failed: {type(exc).__name__}: {exc}"[:500]) from None
        return self.write_chunks(document_id, chunks, source)

    def stored(self, document_id: str) -> StoredDocument | None:
        """What the store holds for the document; ``None`` when nothing, or when the store cannot say."""
        state = getattr(self.store, "document_state", None)
        return state(document_id) if state is not None else None

    def write_chunks(self, document_id: str, chunks: Sequence[Chunk], source: SourceRef | None = None) -> IngestOutcome:
        version, sequencer = (source.version, source.sequencer) if source else (None, None)
        held = self.stored(document_id)
        if held is not None and sequencer_is_older(sequencer, held.sequencer):
            return IngestOutcome(document_id, "superseded", len(held.chunk_ids))
        # Chunk ids hash position and content: the same ids of the same version mean nothing to re-embed,
        # so a redelivered batch costs one lookup per document on every backend that can say.
        if held is not None and chunks and held.version == version and held.chunk_ids == {c.chunk_id for c in chunks}:
            return IngestOutcome(document_id, "unchanged", len(chunks))
        started = time.perf_counter()
        # float32 arrays, not lists of Python floats: 4 bytes a value instead of ~32, so a 50 MB
        # document's ~55k vectors fit the function's memory (docs/benchmarks.md, "RAG ingest sizing").
        vectors: list[array[float]] = []
        for start in range(0, len(chunks), self.embed_batch_size):
            batch = self.embedder.embed_documents([c.text for c in chunks[start : start + self.embed_batch_size]])
            vectors.extend(array("f", v) for v in batch)
        if len(vectors) != len(chunks):
            raise EmbeddingError(f"the embedder returned {len(vectors)} vectors for {len(chunks)} chunks")
        embedded = [dataclasses.replace(c, vector=v) for c, v in zip(chunks, vectors)]
        embed_seconds = time.perf_counter() - started
        started = time.perf_counter()
        try:
            written = self.store.upsert(document_id, embedded, sequencer=sequencer)
        except Superseded:
            # A later event wrote the document while this one was embedding.
            return IngestOutcome(document_id, "superseded", 0, embed_seconds)
        return IngestOutcome(document_id, "indexed", written, embed_seconds, time.perf_counter() - started)

    def delete(self, document_id: str, *, sequencer: str | None = None) -> IngestOutcome:
        try:
            return IngestOutcome(document_id, "deleted", self.store.delete_document(document_id, sequencer=sequencer))
        except Superseded:
            return IngestOutcome(document_id, "superseded")
