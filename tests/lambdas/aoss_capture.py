"""A request-capturing HTTP server on 127.0.0.1 for OpenSearch Serverless client tests.

It records every request (method, path, query, headers, body), keeps index and alias state to
answer the index-management calls (exists, create, aliases) the way OpenSearch does, and holds
the documents ``_bulk`` writes: it assigns ``_id``s as a VECTORSEARCH collection does, deletes
by ``_id``, and answers the searches the store sends (term/bool filters, sort + search_after,
``_source`` includes/excludes, exact kNN with the cosinesimil score ``(1 + cos) / 2``).

Like a collection, it shows writes to searches only after a refresh: with ``refresh_lag`` on,
documents written or deleted stay invisible/visible until ``refresh()``. ``fail_next(status,
count)`` makes the next requests fail (e.g. 403 while data-access rules propagate).
"""

from __future__ import annotations

import itertools
import json
import math
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
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # _id -> {"_index", "_source"}: written
    visible: dict[str, dict[str, Any]] = field(default_factory=dict)  # what searches see (after a refresh)
    refresh_lag: bool = False
    ids: Any = field(default_factory=lambda: itertools.count(1))

    def fail_next(self, status: int, count: int = 1) -> None:
        self.failures.extend([status] * count)

    def refresh(self) -> None:
        with self.lock:
            self.visible = dict(self.documents)

    def sources(self, **match: Any) -> list[dict[str, Any]]:
        """Stored sources (written, refreshed or not) whose top-level fields equal ``match``."""
        return [d["_source"] for d in self.documents.values() if all(d["_source"].get(k) == v for k, v in match.items())]

    def _written(self) -> None:
        if not self.refresh_lag:
            self.visible = dict(self.documents)

    def of(self, method: str, path_part: str = "") -> list[Captured]:
        return [r for r in self.requests if r.method == method and path_part in r.path]


def _field(source: dict[str, Any], dotted: str) -> Any:
    value: Any = source
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _matches(source: dict[str, Any], query: dict[str, Any] | None) -> bool:
    if not query or "match_all" in query:
        return True
    if "term" in query:
        (name, value), = query["term"].items()
        value = value.get("value") if isinstance(value, dict) else value
        return _field(source, name) == value
    if "range" in query:
        (name, bounds), = query["range"].items()
        have = _field(source, name)
        return have is not None and all(
            {"lt": have < v, "lte": have <= v, "gt": have > v, "gte": have >= v}[op] for op, v in bounds.items())
    if "bool" in query:
        clauses = [*query["bool"].get("filter", []), *query["bool"].get("must", [])]
        return all(_matches(source, c) for c in clauses)
    raise ValueError(f"capture server does not evaluate query {query}")


def _project(source: dict[str, Any], spec: Any) -> dict[str, Any] | None:
    if spec is False:
        return None
    if isinstance(spec, list):
        out: dict[str, Any] = {}
        for dotted in spec:
            value = _field(source, dotted)
            if value is None:
                continue
            target = out
            *parents, last = dotted.split(".")
            for part in parents:
                target = target.setdefault(part, {})
            target[last] = value
        return out
    if isinstance(spec, dict):
        return {k: v for k, v in source.items() if k not in spec.get("excludes", [])}
    return dict(source)


def _cosine_score(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return (1.0 + (sum(x * y for x, y in zip(a, b)) / norm if norm else 0.0)) / 2.0


def search(state: AossCapture, index_names: set[str], body: dict[str, Any]) -> dict[str, Any]:
    docs = [(doc_id, d["_source"]) for doc_id, d in state.visible.items() if d["_index"] in index_names]
    query = body.get("query") or {}
    size = int(body.get("size", 10))
    if "knn" in query:
        (vector_field, knn), = query["knn"].items()
        scored = [(_cosine_score(knn["vector"], src[vector_field]), doc_id, src) for doc_id, src in docs
                  if vector_field in src and _matches(src, knn.get("filter"))]
        scored.sort(key=lambda t: -t[0])
        hits = [{"_id": doc_id, "_score": score, "_source": _project(src, body.get("_source", True))}
                for score, doc_id, src in scored[: min(size, int(knn["k"]))]]
    else:
        matched = [(doc_id, src) for doc_id, src in docs if _matches(src, query)]
        sort = body.get("sort") or []
        keys = [next(iter(s)) for s in sort]
        if keys:
            matched.sort(key=lambda t: [_field(t[1], k) for k in keys])
            after = body.get("search_after")
            if after is not None:
                matched = [t for t in matched if [_field(t[1], k) for k in keys] > list(after)]
        hits = []
        for doc_id, src in matched[:size]:
            hit: dict[str, Any] = {"_id": doc_id, "_score": 1.0}
            projected = _project(src, body.get("_source", True))
            if projected is not None:
                hit["_source"] = projected
            if keys:
                hit["sort"] = [_field(src, k) for k in keys]
            hits.append(hit)
    return {"took": 1, "timed_out": False,
            "hits": {"total": {"value": len(hits), "relation": "eq"}, "max_score": None, "hits": hits}}



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
                errors = False
                while i < len(lines):
                    (action, meta), = lines[i].items()
                    index = next(iter(state.aliases.get(meta.get("_index"), ())), meta.get("_index"))
                    if action == "delete":
                        found = state.documents.pop(meta["_id"], None) is not None
                        items.append({"delete": {"_index": index, "_id": meta["_id"], "status": 200 if found else 404,
                                                 "result": "deleted" if found else "not_found"}})
                        i += 1
                    elif "_id" in meta:  # VECTORSEARCH collections refuse ids chosen by the client
                        errors = True
                        items.append({action: {"_index": index, "status": 400, "error": {"type": "illegal_argument_exception",
                                      "reason": "Document ID is not supported in create/index operation request"}}})
                        i += 2
                    else:
                        doc_id = f"srv-{next(state.ids)}"
                        state.documents[doc_id] = {"_index": index, "_source": lines[i + 1]}
                        items.append({action: {"_index": index, "_id": doc_id, "status": 201, "result": "created"}})
                        i += 2
                state._written()
                self._reply(200, {"took": 1, "errors": errors, "items": items})
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
                target = parts[0] if len(parts) == 2 else ""
                names = state.aliases.get(target) or ({target} if target in state.indexes else set())
                if not names and len(parts) == 2:
                    names = {target}  # an index never created explicitly (the store wrote through the alias name)
                self._reply(200, search(state, names, req.json() if req.body else {}))
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
