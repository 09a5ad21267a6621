from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def minilm():
    """The offline MiniLM embedder, loaded once for the whole session."""
    from lambdas.runtime.rag.embedders import LocalMiniLMEmbedder

    embedder = LocalMiniLMEmbedder()
    embedder.model  # noqa: B018 - load the weights now
    return embedder


@pytest.fixture(scope="session")
def labelled():
    return [json.loads(line) for line in (DATA / "labelled.jsonl").read_text(encoding="utf-8").splitlines()]
