"""Token-aware chunking with LangChain's recursive splitter and deterministic chunk ids.

Lengths are counted with the all-MiniLM-L6-v2 WordPiece tokenizer (``tokenizer/``, Apache-2.0,
copied from the model so Lambda needs no model download): chunk sizes then match what the
local embedding model can read (256 tokens) and approximate other embedding models' limits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from lambdas.runtime.rag.loaders import LoadedDocument, SourceRef
from lambdas.runtime.rag.model import INDEXED_SEQUENCER, INDEXED_VERSION, Chunk
from lambdas.runtime.rag.tokens import _tokenizer, count_tokens  # noqa: F401 (count_tokens: re-exported)

# all-MiniLM-L6-v2 reads at most 256 tokens including [CLS]/[SEP]; leave headroom.
DEFAULT_CHUNK_SIZE = 200
DEFAULT_CHUNK_OVERLAP = 40


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def chunk_id(document_id: str, chunk_index: int, text_hash: str) -> str:
    """Same document, position and content -> same id, so re-ingesting replaces instead of duplicating."""
    return hashlib.sha256(f"{document_id}\x1f{chunk_index}\x1f{text_hash}".encode()).hexdigest()[:32]


class TokenChunker:
    """Splits a loaded document page by page (a chunk never spans pages, so citations stay exact)."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE, chunk_overlap: int = DEFAULT_CHUNK_OVERLAP) -> None:
        if chunk_size < 16:
            raise ValueError(f"chunk_size must be at least 16 tokens, got {chunk_size}")
        if not 0 <= chunk_overlap < chunk_size:
            raise ValueError(f"chunk_overlap must be between 0 and chunk_size - 1 ({chunk_size - 1}), got {chunk_overlap}")
        # LangChain's splitters pull in langchain-core (~0.3-0.5 s): loaded when a chunker is built,
        # so importing a handler module stays cheap and only ingestion pays for it.
        from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        common = {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap, "length_function": count_tokens}
        self._splitters = {
            "markdown": RecursiveCharacterTextSplitter.from_language(Language.MARKDOWN, **common),
            "default": RecursiveCharacterTextSplitter(**common),
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TokenChunker:
        return cls(
            chunk_size=int(environ.get("CHUNK_SIZE") or DEFAULT_CHUNK_SIZE),
            chunk_overlap=int(environ.get("CHUNK_OVERLAP") or DEFAULT_CHUNK_OVERLAP),
        )

    def _locate(self, page: str, text: str, previous_start: int, previous: str) -> int:
        """Where chunk ``text`` starts in ``page``, given where the chunk before it started.

        Chunks come out in order as stripped substrings of the page and share at most
        ``chunk_overlap`` tokens with the chunk before: the next one starts at or after the
        previous chunk's last ``chunk_overlap`` tokens. Searching from there (not from the
        previous start) keeps a repeated passage from being placed at an earlier copy.
        """
        if previous_start < 0:
            return max(page.find(text), 0)
        lower = previous_start + max(1, self._overlap_start(previous))
        for begin in (lower, previous_start + 1, 0):  # later fallbacks: tokenisation differed at an edge
            found = page.find(text, begin)
            if found >= 0:
                return found
        return 0

    def _overlap_start(self, text: str) -> int:
        """Character index in ``text`` where its last ``chunk_overlap`` tokens begin."""
        if self.chunk_overlap == 0:
            return len(text)
        offsets = _tokenizer().encode(text, add_special_tokens=False).offsets
        if len(offsets) <= self.chunk_overlap:
            return 0
        return offsets[-self.chunk_overlap][0]

    def split(self, document_id: str, document: LoadedDocument, source: SourceRef) -> list[Chunk]:
        splitter = self._splitters.get(document.document_type, self._splitters["default"])
        cited = document.source or source
        user_metadata = {"document_type": document.document_type, **document.metadata}
        chunks: list[Chunk] = []
        for page in document.pages:
            start, previous = -1, ""
            for text in splitter.split_text(page.text):
                start = self._locate(page.text, text, start, previous)
                previous = text
                text_hash = content_hash(text)
                index = len(chunks)
                metadata = {
                    "source_bucket": cited.bucket,
                    "source_key": cited.key,
                    "source_version": cited.version,
                    "page": page.number,
                    "start_offset": start,
                    "end_offset": start + len(text),
                    "chunk_index": index,
                    "content_hash": text_hash,
                    # The object indexed (for a curated document not the cited original): see store.py.
                    INDEXED_VERSION: source.version,
                    INDEXED_SEQUENCER: source.sequencer,
                    **user_metadata,
                }
                chunks.append(Chunk(chunk_id(document_id, index, text_hash), document_id, text, metadata))
        return chunks
