"""A request-capturing HTTP server on 127.0.0.1 for OpenSearch Serverless client tests.

It records every request (method, path, query, headers, body) and keeps just enough index and
alias state to answer the index-management calls (exists, create, aliases) the way OpenSearch
does. It never invents documents: searches answer with zero hits, bulk requests acknowledge
each action. ``fail_next(status, count)`` makes the next requests fail (e.g. 403 while
data-access rules propagate).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Captured:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def ndjson(self) -> list[Any]:
        return [json.loads(line) for line in self.body.decode().splitlines() if line.strip()]


@dataclass
class AossCapture:
    requests: list[Captured] = field(default_factory=list)
    indexes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> body it was created with
    aliases: dict[str, set[str]] = field(default_factory=dict)  # alias -> index names
    failures: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def fail_next(self, status: int, count: int = 1) -> None:
        self.failures.extend([status] * count)

    def of(self, method: str, path_part: str = "") -> list[Captured]:
        return [r for r in self.requests if r.method == method and path_part in r.path]


def _handler_for(state: AossCapture):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _reply(self, status: int, payload: Any | None) -> None:
            data = b"" if payload is None or self.command == "HEAD" else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if data:
                self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            parsed = urlparse(self.path)
            req = Captured(self.command, parsed.path, parse_qs(parsed.query), {k.lower(): v for k, v in self.headers.items()}, body)
            with state.lock:
                state.requests.append(req)
                if state.failures:
                    status = state.failures.pop(0)
                    self._reply(status, {"status": status, "message": "User does not have permissions for the requested resource"})
                    return
                self._route(req)

        def _route(self, req: Captured) -> None:
            parts = [p for p in req.path.split("/") if p]
            if req.method == "POST" and parts == ["_bulk"]:
                items = []
                lines = req.ndjson()
                i = 0
                while i < len(lines):
                    (action, meta), = lines[i].items()
                    i += 1 if action == "delete" else 2
                    status = 201 if action == "index" else 200
                    items.append({action: {"_index": meta.get("_index"), "_id": meta.get("_id", f"gen-{i}"), "status": status}})
                self._reply(200, {"took": 1, "errors": False, "items": items})
            elif req.method == "POST" and parts == ["_aliases"]:
                for action in req.json()["actions"]:
                    (verb, spec), = action.items()
                    targets = state.aliases.setdefault(spec["alias"], set())
                    (targets.add if verb == "add" else targets.discard)(spec["index"])
                self._reply(200, {"acknowledged": True})
            elif req.method in ("GET", "HEAD") and len(parts) == 2 and parts[0] == "_alias":
                names = state.aliases.get(parts[1]) or set()
                if not names:
                    self._reply(404, {"error": f"alias [{parts[1]}] missing", "status": 404})
                else:
                    self._reply(200, {n: {"aliases": {parts[1]: {}}} for n in sorted(names)})
            elif req.method == "HEAD" and len(parts) == 1:
                known = parts[0] in state.indexes or bool(state.aliases.get(parts[0]))
                self._reply(200 if known else 404, None)
            elif req.method == "PUT" and len(parts) == 1:
                if parts[0] in state.indexes:
                    self._reply(400, {"error": {"type": "resource_already_exists_exception"}, "status": 400})
                else:
                    state.indexes[parts[0]] = req.json()
                    self._reply(200, {"acknowledged": True, "shards_acknowledged": True, "index": parts[0]})
            elif req.method == "DELETE" and len(parts) == 1:
                if state.indexes.pop(parts[0], None) is None:
                    self._reply(404, {"error": {"type": "index_not_found_exception"}, "status": 404})
                else:
                    for targets in state.aliases.values():
                        targets.discard(parts[0])
                    self._reply(200, {"acknowledged": True})
            elif req.method == "GET" and len(parts) == 2 and parts[1] == "_mapping":
                names = state.aliases.get(parts[0]) or ({parts[0]} if parts[0] in state.indexes else set())
                self._reply(200, {n: {"mappings": state.indexes[n]["mappings"]} for n in sorted(names)})
            elif req.method in ("GET", "POST") and parts[-1:] == ["_search"]:
                self._reply(200, {"took": 1, "timed_out": False, "hits": {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []}})
            else:
                self._reply(400, {"error": f"capture server does not handle {req.method} {req.path}"})

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    return Handler


class CaptureServer:
    def __init__(self) -> None:
        self.state = AossCapture()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self.state))
        self.state.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> AossCapture:
        self.thread.start()
        return self.state

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
