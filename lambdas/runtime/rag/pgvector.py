"""``VectorStore`` on PostgreSQL + pgvector: Aurora PostgreSQL in AWS, the embedded server locally.

One table per index: chunk id primary key, document id (indexed, for replace/delete), the text,
metadata as JSONB (GIN-indexed for exact-match filters) and the embedding under an HNSW index
(cosine distance). Vectors travel in pgvector's binary format via COPY, without numpy.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

from lambdas.runtime.rag.model import INDEXED_SEQUENCER, INDEXED_VERSION, Chunk, Hit
from lambdas.runtime.rag.store import (
    FILTER_FIELDS,
    FilterValue,
    StoredDocument,
    StoreUnavailable,
    Superseded,
    check_filters,
    sequencer_is_older,
)

DEFAULT_TABLE = "rag_chunks"
# An auto-paused Aurora Serverless v2 cluster takes ~15 s to resume. The query function sets
# PG_CONNECT_TIMEOUT below its API budget (docs/rag.md, "Timeouts"); ingestion keeps this default.
DEFAULT_CONNECT_TIMEOUT = 30
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,54}$")  # leaves room for index-name suffixes


def vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def _vector_dumper(oid: int) -> type[Dumper]:
    class VectorBinaryDumper(Dumper):
        """pgvector's binary wire format: int16 dimensions, int16 unused, float32 values, big-endian."""

        format = Format.BINARY

        def dump(self, obj: Sequence[float]) -> bytes:
            return struct.pack(f">HH{len(obj)}f", len(obj), 0, *obj)

    VectorBinaryDumper.oid = oid
    return VectorBinaryDumper


class PgVectorStore:
    FILTERABLE_FIELDS = frozenset(FILTER_FIELDS)

    def __init__(
        self,
        connect: str | Callable[[], psycopg.Connection],
        *,
        table: str = DEFAULT_TABLE,
        dimension: int = 384,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
        ef_search: int = 64,
        connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        if not _IDENTIFIER.match(table):
            raise ValueError(f"PG_TABLE {table!r} must be a lowercase SQL identifier (letters, digits, _; max 55)")
        if not 1 <= dimension <= 16000:
            raise ValueError(f"EMBEDDING_DIMENSION must be between 1 and 16000, got {dimension}")
        self.connect_timeout = connect_timeout
        self._connect = (
            (lambda: psycopg.connect(connect, connect_timeout=connect_timeout)) if isinstance(connect, str) else connect
        )
        self.table = table
        self.dimension = dimension
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction
        self.ef_search = ef_search
        self._conn: psycopg.Connection | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, *, secrets_client: Any = None) -> PgVectorStore:
        """``PG_CONNINFO`` (local) or ``PG_SECRET_ARN`` (an RDS secret: host, port, username, password, dbname)."""
        table = environ.get("PG_TABLE") or DEFAULT_TABLE
        dimension = int(environ.get("EMBEDDING_DIMENSION") or 384)
        raw_timeout = environ.get("PG_CONNECT_TIMEOUT") or str(DEFAULT_CONNECT_TIMEOUT)
        if not raw_timeout.isdigit() or not 2 <= int(raw_timeout) <= 120:
            raise ValueError(f"PG_CONNECT_TIMEOUT must be a whole number of seconds from 2 to 120, got {raw_timeout!r}")
        timeout = int(raw_timeout)
        conninfo = environ.get("PG_CONNINFO")
        if conninfo:
            return cls(conninfo, table=table, dimension=dimension, connect_timeout=timeout)
        secret_arn = environ.get("PG_SECRET_ARN")
        if not secret_arn:
            raise ValueError("aurora-pgvector needs PG_SECRET_ARN (or PG_CONNINFO for a local server)")
        database = environ.get("PG_DATABASE")

        def connect() -> psycopg.Connection:
            import boto3

            client = secrets_client or boto3.client("secretsmanager")
            # Read on every (re)connect so a rotated password is picked up.
            secret = json.loads(client.get_secret_value(SecretId=secret_arn)["SecretString"])
            return psycopg.connect(
                host=secret["host"], port=int(secret.get("port", 5432)), user=secret["username"],
                password=secret["password"], dbname=database or secret.get("dbname", "postgres"),
                sslmode="require", connect_timeout=timeout,
            )

        return cls(connect, table=table, dimension=dimension, connect_timeout=timeout)

    # -- connection -------------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                conn = self._connect()
            except psycopg.OperationalError as exc:
                # One attempt only: a retry would double the wait past the caller's time limit.
                raise StoreUnavailable(
                    f"the vector database did not accept a connection within {self.connect_timeout} s "
                    "(an auto-paused Aurora cluster takes about 15 s to resume); retry shortly"
                ) from exc
            conn.autocommit = True
            conn.execute(f"SET hnsw.ef_search = {int(self.ef_search)}")
            try:
                # pgvector >= 0.8: keep scanning the graph until enough rows pass the filter.
                conn.execute("SET hnsw.iterative_scan = strict_order")
            except (psycopg.errors.InvalidParameterValue, psycopg.errors.UndefinedObject):
                pass  # older pgvector: a filtered search may return fewer than k rows
            self._conn = conn
            self._vector_oid = None
        return self._conn

    def _run(self, work: Callable[[psycopg.Connection], Any]) -> Any:
        """Run ``work``; a kept connection dropped while idle (Lambda freeze, Aurora pause) is reopened once."""
        reused = self._conn is not None and not self._conn.closed and not self._conn.broken
        conn = self._connection()
        try:
            return work(conn)
        except psycopg.OperationalError:
            if not reused or not conn.broken:
                raise
            self.close()
            return work(self._connection())

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- schema -----------------------------------------------------------------------------
    def schema_statements(self) -> list[str]:
        t = self.table
        return [
            "CREATE EXTENSION IF NOT EXISTS vector",
            f"""CREATE TABLE IF NOT EXISTS {t} (
                chunk_id text PRIMARY KEY,
                document_id text NOT NULL,
                content text NOT NULL,
                metadata jsonb NOT NULL,
                embedding vector({self.dimension}) NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now())""",
            f"CREATE INDEX IF NOT EXISTS {t}_document_idx ON {t} (document_id)",
            f"CREATE INDEX IF NOT EXISTS {t}_metadata_idx ON {t} USING gin (metadata jsonb_path_ops)",
            f"CREATE INDEX IF NOT EXISTS {t}_embedding_idx ON {t} USING hnsw (embedding vector_cosine_ops) "
            f"WITH (m = {int(self.hnsw_m)}, ef_construction = {int(self.hnsw_ef_construction)})",
        ]

    def ensure_schema(self) -> None:
        def work(conn: psycopg.Connection) -> None:
            with conn.transaction():
                # Serialise concurrent cold starts creating the same objects.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"schema:{self.table}",))
                for statement in self.schema_statements():
                    conn.execute(statement)
                row = conn.execute(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = %s::regclass AND attname = 'embedding'",
                    (self.table,),
                ).fetchone()
            expected = f"vector({self.dimension})"
            if row and row[0] != expected:
                raise ValueError(
                    f"table {self.table} stores {row[0]} but EMBEDDING_DIMENSION is {self.dimension}; "
                    "re-embed into a new PG_TABLE rather than mixing dimensions"
                )

        self._run(work)

    # -- writes -----------------------------------------------------------------------------
    def _register_vector(self, conn: psycopg.Connection) -> None:
        if getattr(self, "_vector_oid", None) is None:
            self._vector_oid = conn.execute("SELECT 'vector'::regtype::oid").fetchone()[0]
            conn.adapters.register_dumper(None, _vector_dumper(self._vector_oid))

    def _check_order(self, conn: psycopg.Connection, document_id: str, sequencer: str | None) -> None:
        """Under the document's lock: refuse an event older than the one that wrote the stored chunks."""
        if not sequencer:
            return
        row = conn.execute(
            f"SELECT metadata->>'{INDEXED_SEQUENCER}' FROM {self.table} WHERE document_id = %s LIMIT 1", (document_id,)
        ).fetchone()
        if row is not None and sequencer_is_older(sequencer, row[0]):
            raise Superseded(f"{document_id} was written by event {row[0]}, later than {sequencer}")

    def upsert(self, document_id: str, chunks: Sequence[Chunk], *, sequencer: str | None = None) -> int:
        for chunk in chunks:
            if chunk.document_id != document_id:
                raise ValueError(f"chunk {chunk.chunk_id} belongs to {chunk.document_id!r}, not {document_id!r}")
            if chunk.vector is None or len(chunk.vector) != self.dimension:
                raise ValueError(f"chunk {chunk.chunk_id} needs a {self.dimension}-dimensional vector")

        def work(conn: psycopg.Connection) -> int:
            self._register_vector(conn)
            with conn.transaction():
                # Two deliveries of the same S3 event must not interleave their delete and insert.
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (document_id,))
                self._check_order(conn, document_id, sequencer)
                conn.execute(f"DELETE FROM {self.table} WHERE document_id = %s", (document_id,))
                with conn.cursor().copy(
                    f"COPY {self.table} (chunk_id, document_id, content, metadata, embedding) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["text", "text", "text", "jsonb", self._vector_oid])
                    for chunk in chunks:
                        copy.write_row((chunk.chunk_id, document_id, chunk.text, chunk.metadata, chunk.vector))
            return len(chunks)

        return self._run(work)

    def delete_document(self, document_id: str, *, sequencer: str | None = None) -> int:
        def work(conn: psycopg.Connection) -> int:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (document_id,))
                self._check_order(conn, document_id, sequencer)
                return conn.execute(f"DELETE FROM {self.table} WHERE document_id = %s", (document_id,)).rowcount

        return self._run(work)

    # -- reads ------------------------------------------------------------------------------
    def search(self, vector: Sequence[float], k: int, filters: Mapping[str, FilterValue] | None = None) -> list[Hit]:
        checked = check_filters(filters, self.FILTERABLE_FIELDS)
        if len(vector) != self.dimension:
            raise ValueError(f"query vector has {len(vector)} dimensions; the store holds {self.dimension}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        where, params = [], []
        document_id = checked.pop("document_id", None)
        if document_id is not None:
            where.append("document_id = %s")
            params.append(str(document_id))
        if checked:
            where.append("metadata @> %s::jsonb")
            params.append(json.dumps(checked))
        sql = (
            f"SELECT chunk_id, document_id, content, metadata, embedding <=> %s::vector AS distance "
            f"FROM {self.table} {'WHERE ' + ' AND '.join(where) if where else ''} "
            f"ORDER BY distance LIMIT %s"
        )
        literal = vector_literal(vector)

        def work(conn: psycopg.Connection) -> list[Hit]:
            rows = conn.execute(sql, (literal, *params, int(k))).fetchall()
            return [Hit(Chunk(r[0], r[1], r[2], r[3]), 1.0 - float(r[4])) for r in rows]

        return self._run(work)

    def document_chunk_ids(self, document_id: str) -> set[str]:
        """Ids of the chunks stored for a document: equal ids mean equal content, so re-embedding can be skipped."""
        return self._run(
            lambda conn: {
                row[0]
                for row in conn.execute(f"SELECT chunk_id FROM {self.table} WHERE document_id = %s", (document_id,))
            }
        )

    def document_state(self, document_id: str) -> StoredDocument | None:
        rows = self._run(lambda conn: conn.execute(
            f"SELECT chunk_id, metadata->>'{INDEXED_VERSION}', metadata->>'{INDEXED_SEQUENCER}' "
            f"FROM {self.table} WHERE document_id = %s", (document_id,)).fetchall())
        if not rows:
            return None
        return StoredDocument(frozenset(r[0] for r in rows), rows[0][1], rows[0][2])

    def document_ids(self, prefix: str = "") -> set[str]:
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self._run(
            lambda conn: {
                row[0]
                for row in conn.execute(f"SELECT DISTINCT document_id FROM {self.table} WHERE document_id LIKE %s", (pattern,))
            }
        )

    def count(self) -> int:
        return self._run(lambda conn: conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0])
