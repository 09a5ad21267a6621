"""One real PostgreSQL + pgvector server per test session (as ``nobody`` when run as root), the real
offline embedding model loaded once, and a fresh table per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from lambdas.runtime.rag.local_postgres import LocalPostgres

# Powertools reads these when the handler modules are imported, as Lambda sets them before init.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LLMOps")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "rag")


@pytest.fixture(scope="session")
def pg_conninfo():
    # /tmp/<name> mode 0755: the unprivileged server user must be able to enter every parent.
    home = Path(tempfile.mkdtemp(prefix="llmops-rag-pg-"))
    home.chmod(0o755)
    server = LocalPostgres(home)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def embedder():
    from lambdas.runtime.rag.embedders import LocalMiniLMEmbedder

    model = LocalMiniLMEmbedder()
    model.model  # load once for the whole session
    return model


@pytest.fixture
def store(pg_conninfo):
    import psycopg

    from lambdas.runtime.rag.pgvector import PgVectorStore

    table = f"t_{uuid.uuid4().hex[:12]}"
    pg = PgVectorStore(pg_conninfo, table=table, dimension=384)
    pg.ensure_schema()
    yield pg
    pg.close()
    with psycopg.connect(pg_conninfo, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.fixture
def aws_env(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield os.environ
