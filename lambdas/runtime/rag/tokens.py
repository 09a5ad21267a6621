"""Token counts with the shipped all-MiniLM-L6-v2 WordPiece tokenizer (``tokenizer/``, Apache-2.0).

One loader for chunking (chunk sizes the local embedding model can read) and for the monitoring
metrics (prompt and response token counts when the model reports none).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

TOKENIZER_FILE = Path(__file__).resolve().parent / "tokenizer" / "all-minilm-l6-v2.json"


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(TOKENIZER_FILE))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def count_tokens(text: str) -> int:
    """Tokens of ``text``, without [CLS]/[SEP]."""
    return len(_tokenizer().encode(text, add_special_tokens=False).ids)
