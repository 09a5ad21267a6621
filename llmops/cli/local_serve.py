"""``llmops local serve``: the local model behind the HTTP contract of a SageMaker serving container.

``GET /ping``, ``POST /invocations`` and ``POST /endpoints/<name>/invocations`` (the SageMaker Runtime
InvokeEndpoint path), so a boto3 ``sagemaker-runtime`` client with ``endpoint_url=http://127.0.0.1:PORT``
talks to it as to a deployed endpoint.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from llmops.cli.local_files import state_home

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8080  # the port SageMaker serving containers listen on
# SageMaker endpoint names: 1-63 characters of [a-zA-Z0-9](-*[a-zA-Z0-9])*.
_ENDPOINT_PATH = re.compile(r"^/endpoints/([a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62})/invocations$")


def model_cache_dir() -> Path:
    """``$LLMOPS_MODEL_CACHE``, else ``<state>/models/<model>``: the converted model, shared by every command."""
    import os

    from lambdas.runtime.inference.local_model import CACHE_FOLDER

    if os.environ.get("LLMOPS_MODEL_CACHE"):
        return Path(os.environ["LLMOPS_MODEL_CACHE"]).expanduser().resolve()
    return state_home() / "models" / CACHE_FOLDER


def register(registry: dict) -> None:
    serve = registry["local"].add_parser(
        "serve", help="serve the local generative model over a SageMaker serving container's HTTP contract")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    serve.add_argument("--host", default=LOOPBACK, help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--container", choices=("tgi", "djl-lmi"), default="tgi",
                       help="answer shape of the `inputs` requests: TGI's list or DJL-LMI's object (default tgi)")
    serve.add_argument("--max-new-tokens", type=int, default=1024, help="largest max_new_tokens accepted (default 1024)")
    serve.add_argument("--threads", type=int, default=0,
                       help="CPU threads per generation (default 0: torch's choice; 1 is fastest on a busy machine)")
    serve.set_defaults(func=run_serve)


class InferenceServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], model: Any, *, container: str = "tgi", limits: Any = None,
                 log: Any = None) -> None:
        from lambdas.runtime.inference.serving_contract import CONTAINERS, Limits

        if container not in CONTAINERS:
            raise ValueError(f"container must be one of {', '.join(CONTAINERS)}, got {container!r}")
        super().__init__(address, _Handler)
        self.model = model
        self.container = container
        self.limits = limits or Limits()
        self.log = log

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: InferenceServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.log is not None:
            print(f"{self.address_string()} {format % args}", file=self.server.log, flush=True)

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        raw = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/ping":
            self._send(200, {})
        elif self.path == "/invocations" or _ENDPOINT_PATH.match(self.path):
            self._send(405, {"error": "use POST", "error_type": "method_not_allowed"}, {"Allow": "POST"})
        else:
            self._send(404, {"error": f"no route {self.path}; use GET /ping or POST /invocations",
                             "error_type": "not_found"})

    def do_POST(self) -> None:  # noqa: N802
        from lambdas.runtime.inference.serving_contract import ContractError, model_error

        endpoint = _ENDPOINT_PATH.match(self.path)
        if self.path != "/invocations" and not endpoint:
            self._send(404, {"error": f"no route {self.path}; use POST /invocations or "
                                      "/endpoints/<name>/invocations", "error_type": "not_found"})
            return
        try:
            answer = self._invoke()
        except ContractError as exc:
            status, body = exc.status, exc.body()
        except Exception as exc:  # a model failure is the container's 500, never a dropped connection
            traceback.print_exc(file=self.server.log or sys.stderr)
            status, body = 500, {"error": f"generation failed: {exc}", "error_type": "generation"}
        else:
            headers = {"X-Amzn-Invoked-Production-Variant": "AllTraffic"} if endpoint else {}
            self._send(200, answer, headers)
            return
        if endpoint:  # what SageMaker Runtime makes of a container error: 424 ModelError
            self._send(424, model_error(status, body["error"], endpoint.group(1)), {"x-amzn-ErrorType": "ModelError"})
        else:
            self._send(status, body)

    def _invoke(self) -> Any:
        from lambdas.runtime.inference.serving_contract import ContractError, parse_invocation, response_for

        limits = self.server.limits
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise ContractError(411, "a Content-Length header is required", "length_required")
        if int(length) > limits.payload_limit:
            self.close_connection = True  # the unread body would be taken for the next request
            raise ContractError(413, f"the body is {length} bytes; the limit is {limits.payload_limit}",
                                "payload_too_large")
        body = self.rfile.read(int(length))
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise ContractError(415, f"Content-Type must be application/json, got {content_type or 'none'!r}",
                                "unsupported_media_type")
        request = parse_invocation(body, limits, container=self.server.container)
        try:
            result = self.server.model.generate(
                request.messages or request.prompt,
                max_new_tokens=request.max_new_tokens, temperature=request.temperature,
                do_sample=request.do_sample, top_p=request.top_p, top_k=request.top_k,
                repetition_penalty=request.repetition_penalty, stop=request.stop, seed=request.seed,
                token_details=request.details or request.decoder_input_details,
                prefill_details=request.decoder_input_details,
            )
        except ValueError as exc:  # e.g. prompt plus max_new_tokens beyond the context window
            raise ContractError(422, str(exc)) from None
        return response_for(request, result, container=self.server.container)


def start_server(model: Any, *, host: str = LOOPBACK, port: int = 0, container: str = "tgi", limits: Any = None,
                 log: Any = None) -> tuple[InferenceServer, threading.Thread]:
    """A server answering on a background thread (``port=0``: a free port); ``server.shutdown()`` stops it."""
    server = InferenceServer((host, port), model, container=container, limits=limits, log=log)
    thread = threading.Thread(target=server.serve_forever, name="llmops-local-serve", daemon=True)
    thread.start()
    return server, thread


def run_serve(args: argparse.Namespace) -> int:
    from lambdas.runtime.inference.local_model import ModelNotInstalled, cached_model_ready, load_local_model
    from lambdas.runtime.inference.serving_contract import Limits

    if not 0 <= args.port <= 65535:
        print(f"error: --port must be between 0 and 65535, got {args.port}", file=sys.stderr)
        return 2
    if args.max_new_tokens < 1:
        print(f"error: --max-new-tokens must be at least 1, got {args.max_new_tokens}", file=sys.stderr)
        return 2
    if args.threads < 0:
        print(f"error: --threads must be 0 (torch's choice) or more, got {args.threads}", file=sys.stderr)
        return 2
    cache = model_cache_dir()
    try:
        if not cached_model_ready(cache):
            print(f"Converting the model once into {cache} (about a minute) ...", file=sys.stderr, flush=True)
        model = load_local_model(cache)
        model.threads = args.threads or None
    except ModelNotInstalled as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    limits = Limits(max_new_tokens=args.max_new_tokens, default_new_tokens=min(256, args.max_new_tokens))
    try:
        server = InferenceServer((args.host, args.port), model, container=args.container, limits=limits,
                                 log=sys.stderr)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if args.host not in (LOOPBACK, "localhost", "::1"):
        print(f"warning: listening on {args.host}: other machines can reach this unauthenticated server",
              file=sys.stderr)
    print(f"Serving {model.name} ({args.container} contract) on {server.url}\n"
          f"  GET /ping, POST /invocations, POST /endpoints/<name>/invocations\n"
          f"  boto3: boto3.client('sagemaker-runtime', endpoint_url='{server.url}')\n"
          "Ctrl-C stops it.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0

