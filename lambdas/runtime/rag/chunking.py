"""Token-aware chunking with LangChain's recursive splitter and deterministic chunk ids.

Lengths are counted with the all-MiniLM-L6-v2 WordPiece tokenizer (``tokenizer/``, Apache-2.0,
copied from the model so Lambda needs no model download): chunk sizes then match what the
local embedding model can read (256 tokens) and approximate other embedding models' limits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from lambdas.runtime.rag.loaders import LoadedDocument, SourceRef
from lambdas.runtime.rag.model import Chunk

TOKENIZER_FILE = Path(__file__).resolve().parent / "tokenizer" / "all-minilm-l6-v2.json"
# all-MiniLM-L6-v2 reads at most 256 tokens including [CLS]/[SEP]; leave headroom.
DEFAULT_CHUNK_SIZE = 200
DEFAULT_CHUNK_OVERLAP = 40


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(TOKENIZER_FILE))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def count_tokens(text: str) -> int:
    return len(_tokenizer().encode(text, add_special_tokens=False).ids)


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

    def split(self, document_id: str, document: LoadedDocument, source: SourceRef) -> list[Chunk]:
        splitter = self._splitters.get(document.document_type, self._splitters["default"])
        cited = document.source or source
        user_metadata = {"document_type": document.document_type, **document.metadata}
        chunks: list[Chunk] = []
        for page in document.pages:
            start = -1
            for text in splitter.split_text(page.text):
                # Chunks come out in order as stripped substrings of the page; look ahead of the last one.
                found = page.text.find(text, start + 1)
                start = found if found >= 0 else page.text.find(text)
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
                    **user_metadata,
                }
                chunks.append(Chunk(chunk_id(document_id, index, text_hash), document_id, text, metadata))
        return chunks
