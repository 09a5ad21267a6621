"""``llmops delivery smoke`` against real local HTTP servers: a SigV4-checking query API and ``llmops local serve``."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from lambdas.runtime.delivery.smoke import SmokeFailed, smoke_endpoint
from llmops.cli import delivery as delivery_cli
from llmops.cli import main as cli
from tests.helpers import config_with

KEY, SECRET, REGION = "AKIDSMOKETEST", "smoke-secret", "us-east-1"


def verify_sigv4(handler: BaseHTTPRequestHandler, body: bytes) -> str | None:
    """Recompute the signature with botocore from what arrived; None when it matches."""
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/") or "/execute-api/aws4_request" not in auth:
        return f"not a SigV4 execute-api signature: {auth!r}"
    host = handler.headers["Host"]
    request = AWSRequest(method="POST", url=f"http://{host}{handler.path}", data=body,
                         headers={"Content-Type": handler.headers["Content-Type"], "X-Amz-Date": handler.headers["X-Amz-Date"]})
    request.context["timestamp"] = handler.headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(KEY, SECRET), "execute-api", REGION)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return None if auth.endswith(f"Signature={expected}") else "signature mismatch"


class Api(ThreadingHTTPServer):
    """POST /v1/query: 503 'model is starting' for the first ``starting`` calls, then an answer; unsigned -> 403."""

    daemon_threads = True

    def __init__(self, starting: int = 0, embeddings: bool = False):
        self.starting, self.calls, self.problems = starting, 0, []
        super().__init__(("127.0.0.1", 0), ApiHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class ApiHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet test output
        pass

    def _send(self, status: int, payload) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server: Api = self.server  # type: ignore[assignment]
        if self.path.startswith("/endpoints/"):  # SageMaker Runtime path: a TEI-shaped embeddings container
            self._send(200, [[0.1, 0.2, 0.3, 0.4]])
            return
        problem = verify_sigv4(self, body)
        if problem:
            server.problems.append(problem)
            self._send(403, {"message": problem})
            return
        server.calls += 1
        if server.calls <= server.starting:
            self._send(503, {"error": "ModelStarting", "message": "model is starting"})
            return
        question = json.loads(body)["question"]
        self._send(200, {"answer": f"answer to {question}", "sources": []})


@pytest.fixture
def api_factory():
    servers = []

    def make(**kw) -> Api:
        server = Api(**kw)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture(scope="module")
def local_serve():
    """``llmops local serve`` with the real local model, speaking DJL-LMI's contract (dev's LLM container)."""
    from lambdas.runtime.inference.local_model import load_local_model
    from llmops.cli.local_serve import model_cache_dir, start_server

    model = load_local_model(model_cache_dir())
    model.threads = 1
    server, thread = start_server(model, container="djl-lmi")
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def dev_without_embeddings(monkeypatch):
    config = config_with("dev", {"inference": {"embeddings": {"enabled": False}}})
    monkeypatch.setattr(delivery_cli, "_config", lambda: config)
    return config


pytestmark = pytest.mark.xdist_group("local_model")


def test_smoke_signs_the_query_waits_out_a_starting_model_and_invokes_the_local_endpoint(
        api_factory, credentials, local_serve, dev_without_embeddings, capsys):
    api = api_factory(starting=2)
    code = cli(["delivery", "smoke", "--env", "dev", "--query-url", f"{api.url}/v1/query", "--llm-endpoint", "llmops-dev-llm",
                "--runtime-endpoint-url", local_serve.url, "--attempts", "4", "--interval", "0"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert api.problems == [] and api.calls == 3
    assert "ok: query API" in out.out and "(attempt 3)" in out.out
    assert "ok: endpoint llmops-dev-llm (component llmops-dev-llm-primary): generated" in out.out


def test_smoke_fails_with_the_reason_when_the_model_never_starts(api_factory, credentials, dev_without_embeddings, capsys):
    api = api_factory(starting=99)
    code = cli(["delivery", "smoke", "--env", "dev", "--query-url", f"{api.url}/v1/query", "--llm-endpoint", "x",
                "--attempts", "3", "--interval", "0"])
    err = capsys.readouterr().err
    assert code == 1
    assert "still not serving after 3 attempts" in err and "HTTP 503" in err and "model is starting" in err


def test_a_wrong_signature_is_refused_by_the_server_and_fails_at_once(api_factory, monkeypatch, dev_without_embeddings, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "another-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    api = api_factory()
    code = cli(["delivery", "smoke", "--env", "dev", "--query-url", f"{api.url}/v1/query", "--llm-endpoint", "x",
                "--attempts", "3", "--interval", "0"])
    assert code == 1 and api.problems == ["signature mismatch"]
    assert "HTTP 403" in capsys.readouterr().err


def test_missing_outputs_are_named(dev_without_embeddings, credentials, monkeypatch, capsys):
    for name in ("QUERY_URL", "LLM_ENDPOINT", "EMBEDDINGS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert cli(["delivery", "smoke", "--env", "dev", "--llm-endpoint", "x"]) == 2
    assert "query API (--query-url/$QUERY_URL)" in capsys.readouterr().err


def test_embeddings_endpoint_request_of_the_tei_shape(api_factory, credentials):
    api = api_factory()
    runtime = boto3.client("sagemaker-runtime", endpoint_url=api.url, region_name=REGION,
                           config=Config(retries={"max_attempts": 1}))
    check = smoke_endpoint(runtime, "llmops-dev-embeddings", "tei-cpu", attempts=1, interval=0)
    assert check.detail == "embedding of 4 values"
    with pytest.raises(SmokeFailed, match="no smoke request for container"):
        smoke_endpoint(runtime, "e", "nope", attempts=1, interval=0)


def test_a_container_error_fails_at_once_with_the_message(local_serve, credentials):
    runtime = boto3.client("sagemaker-runtime", endpoint_url=local_serve.url, region_name=REGION,
                           config=Config(retries={"max_attempts": 1}))
    # The local serve speaks LMI's `inputs` shape; an OpenAI completion body is a 4xx there (ModelError).
    with pytest.raises(SmokeFailed, match="endpoint llmops-dev-llm: ModelError"):
        smoke_endpoint(runtime, "llmops-dev-llm", "vllm", attempts=5, interval=0)
