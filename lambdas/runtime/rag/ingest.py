"""Ingestion: load -> chunk -> embed in batches -> replace the document's chunks in the store.

One code path for the ``rag_ingest`` Lambda (documents from S3) and ``llmops local ingest``
(files on disk). Nothing is deleted or overwritten until the new chunks are ready, so a bad
new version of a document never loses the chunks already indexed.
"""

from __future__ import annotations

import dataclasses
import time
from array import array
from collections.abc import Mapping, Sequence
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
    arms: dict[str, str] = dataclasses.field(default_factory=dict)  # embedding A/B: each arm's index's status


# With several indexes (an embedding A/B), the document's status is the most telling of theirs.
_PRECEDENCE = ("indexed", "deleted", "superseded", "unchanged")


class IngestionPipeline:
    """Writes each document into one index, or into every arm's index while an embedding A/B runs.

    ``arms`` maps arm name -> (store, embedder). Chunking runs once; each index is checked on its
    own (an unchanged document is skipped per index, so a new arm's index fills while the other's
    is left alone) and embedded with its own model.
    """

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        chunker: TokenChunker | None = None,
        *,
        embed_batch_size: int = 64,
        max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
        arms: Mapping[str, tuple[VectorStore, Embedder]] | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.chunker = chunker or TokenChunker()
        self.embed_batch_size = embed_batch_size
        self.max_document_bytes = max_document_bytes
        self.targets: dict[str, tuple[VectorStore, Embedder]] = dict(arms) if arms else {"": (store, embedder)}

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

    @staticmethod
    def _state(store: VectorStore, document_id: str) -> StoredDocument | None:
        state = getattr(store, "document_state", None)
        return state(document_id) if state is not None else None

    def stored(self, document_id: str) -> StoredDocument | None:
        """What the (first) store holds for the document; ``None`` when nothing, or when the store cannot say."""
        return self._state(next(iter(self.targets.values()))[0], document_id)

    def stored_all(self, document_id: str) -> list[StoredDocument | None]:
        """What each index holds for the document (one entry per arm)."""
        return [self._state(store, document_id) for store, _ in self.targets.values()]

    @staticmethod
    def _combine(document_id: str, outcomes: dict[str, IngestOutcome]) -> IngestOutcome:
        if list(outcomes) == [""]:
            return outcomes[""]
        first = next(iter(outcomes.values()))
        status = min((o.status for o in outcomes.values()), key=_PRECEDENCE.index)
        return IngestOutcome(document_id, status, first.chunks, sum(o.embed_seconds for o in outcomes.values()),
                             sum(o.store_seconds for o in outcomes.values()), {arm: o.status for arm, o in outcomes.items()})

    def write_chunks(self, document_id: str, chunks: Sequence[Chunk], source: SourceRef | None = None) -> IngestOutcome:
        outcomes = {arm: self._write(store, embedder, document_id, chunks, source)
                    for arm, (store, embedder) in self.targets.items()}
        return self._combine(document_id, outcomes)

    def _write(self, store: VectorStore, embedder: Embedder, document_id: str, chunks: Sequence[Chunk],
               source: SourceRef | None) -> IngestOutcome:
        version, sequencer = (source.version, source.sequencer) if source else (None, None)
        held = self._state(store, document_id)
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
            batch = embedder.embed_documents([c.text for c in chunks[start : start + self.embed_batch_size]])
            vectors.extend(array("f", v) for v in batch)
        if len(vectors) != len(chunks):
            raise EmbeddingError(f"the embedder returned {len(vectors)} vectors for {len(chunks)} chunks")
        embedded = [dataclasses.replace(c, vector=v) for c, v in zip(chunks, vectors)]
        embed_seconds = time.perf_counter() - started
        started = time.perf_counter()
        try:
            written = store.upsert(document_id, embedded, sequencer=sequencer)
        except Superseded:
            # A later event wrote the document while this one was embedding.
            return IngestOutcome(document_id, "superseded", 0, embed_seconds)
        return IngestOutcome(document_id, "indexed", written, embed_seconds, time.perf_counter() - started)

    def delete(self, document_id: str, *, sequencer: str | None = None) -> IngestOutcome:
        outcomes = {}
        for arm, (store, _) in self.targets.items():
            try:
                outcomes[arm] = IngestOutcome(document_id, "deleted", store.delete_document(document_id, sequencer=sequencer))
            except Superseded:
                outcomes[arm] = IngestOutcome(document_id, "superseded")
        return self._combine(document_id, outcomes)
