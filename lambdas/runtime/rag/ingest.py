"""Ingestion: load -> chunk -> embed in batches -> replace the document's chunks in the store.

One code path for the ``rag_ingest`` Lambda (documents from S3) and ``llmops local ingest``
(files on disk). Nothing is deleted or overwritten until the new chunks are ready, so a bad
new version of a document never loses the chunks already indexed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

from lambdas.runtime.rag.chunking import TokenChunker
from lambdas.runtime.rag.embedders import Embedder, EmbeddingError
from lambdas.runtime.rag.loaders import DEFAULT_MAX_DOCUMENT_BYTES, LoadedDocument, SourceRef, load_document
from lambdas.runtime.rag.model import Chunk
from lambdas.runtime.rag.store import VectorStore


@dataclass(frozen=True)
class IngestOutcome:
    document_id: str
    status: str  # indexed | unchanged | deleted
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
        return self.write_chunks(document_id, self.chunker.split(document_id, document, source))

    def write_chunks(self, document_id: str, chunks: Sequence[Chunk]) -> IngestOutcome:
        stored_ids = getattr(self.store, "document_chunk_ids", None)
        # Chunk ids hash position and content: the same ids mean nothing to re-embed.
        if stored_ids is not None and chunks and stored_ids(document_id) == {c.chunk_id for c in chunks}:
            return IngestOutcome(document_id, "unchanged", len(chunks))
        started = time.perf_counter()
        vectors: list[list[float]] = []
        for start in range(0, len(chunks), self.embed_batch_size):
            vectors.extend(self.embedder.embed_documents([c.text for c in chunks[start : start + self.embed_batch_size]]))
        if len(vectors) != len(chunks):
            raise EmbeddingError(f"the embedder returned {len(vectors)} vectors for {len(chunks)} chunks")
        embedded = [dataclasses.replace(c, vector=tuple(v)) for c, v in zip(chunks, vectors)]
        embed_seconds = time.perf_counter() - started
        started = time.perf_counter()
        written = self.store.upsert(document_id, embedded)
        return IngestOutcome(document_id, "indexed", written, embed_seconds, time.perf_counter() - started)

    def delete(self, document_id: str) -> IngestOutcome:
        return IngestOutcome(document_id, "deleted", self.store.delete_document(document_id))
