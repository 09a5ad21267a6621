"""OpenSearchVectorStore: the VectorStore backend on an Amazon OpenSearch Serverless collection.

Three facts of OpenSearch Serverless shape this module:

- VECTORSEARCH collections assign document ``_id``s themselves (a write naming an ``_id`` is
  refused) and have no ``_delete_by_query``. So the deterministic chunk id is stored in the
  ``chunk_id`` keyword field, and replacing a document's chunks is one ``_bulk`` request that
  indexes the new chunks and deletes the ``_id``s a term search found for that document.
- Searches see writes only after the collection refreshes (seconds), so the term search of
  an upsert that follows another upsert of the same document within that window misses the
  first one's chunks, which then stay. Each upsert stamps its chunks with a ``generation``;
  ``search`` drops hits of a document older than the newest generation it returned for that
  document and folds equal ``chunk_id``s, and the next upsert of the document removes them.
- A document's stored chunks are listed page by page with ``search_after`` on
  (``chunk_id``, ``generation``), so documents of any size can be replaced and deleted (no
  point in time: not needed for a listing that is repeated until it comes back empty). A
  delete lists and deletes, waits ``settle_seconds`` (the refresh window), and lists again,
  until a listing finds nothing: chunks written just before the delete are removed too.
- Writers and readers address an alias (``AOSS_INDEX``); the concrete index is named after a
  fingerprint of its mapping, so a mapping change creates a new index and moves the alias
  (``ensure_index``, used by ``ensure_schema`` and by the ``rag_vector_index`` custom resource).

Requests are signed with SigV4 for the ``aoss`` service (``RequestsAWSV4SignerAuth``, the
non-deprecated name of ``AWSV4SignerAuth``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from lambdas.runtime.rag.model import INDEXED_SEQUENCER, INDEXED_VERSION, SOURCE_FIELDS, USER_FIELDS, Chunk, Hit
from lambdas.runtime.rag.store import (
    FILTER_FIELDS,
    FilterValue,
    StoredDocument,
    Superseded,
    check_filters,
    sequencer_is_older,
)

SPACES = ("cosinesimil", "l2", "innerproduct")
VECTOR_FIELD = "vector"
# Page size of a chunk listing (10,000 is the most one search returns).
LIST_PAGE_SIZE = 1_000
# Listing rounds of a delete before giving up (SQS then redelivers the event).
DELETE_ROUNDS = 4
DEFAULT_SETTLE_SECONDS = 10.0
# Bulk requests stay well under the collection's 10 MiB request limit at 384-1024 dimensions.
BULK_CHUNKS_PER_REQUEST = 200

# Metadata field -> mapping type. Only these are indexed (and so filterable); other metadata
# is kept in _source for citations without growing the mapping.
METADATA_TYPES: dict[str, str] = {
    "source_bucket": "keyword",
    "source_key": "keyword",
    "source_version": "keyword",
    "page": "integer",
    "start_offset": "integer",
    "end_offset": "integer",
    "chunk_index": "integer",
    "content_hash": "keyword",
    "language": "keyword",
    "document_type": "keyword",
}
assert set(SOURCE_FIELDS) | set(USER_FIELDS) <= set(METADATA_TYPES)
FILTERABLE_FIELDS = frozenset(FILTER_FIELDS)
# The mapping type of each filter field must match its one declared type (store.FILTER_FIELDS).
assert all(METADATA_TYPES[name] == ("integer" if kind is int else "keyword")
           for name, kind in FILTER_FIELDS.items() if name != "document_id")


class IndexMappingConflict(RuntimeError):
    """The alias name is taken by a concrete index, or the live mapping differs from the expected one."""


def index_body(dimension: int, space: str = "cosinesimil", *, m: int = 16, ef_construction: int = 128,
               ef_search: int = 100) -> dict[str, Any]:
    """Settings and mappings of the vector index: faiss HNSW ``knn_vector`` plus filterable metadata."""
    if not isinstance(dimension, int) or isinstance(dimension, bool) or not 2 <= dimension <= 16_000:
        raise ValueError(f"dimension must be an integer from 2 to 16000, got {dimension!r}")
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
    return {
        "settings": {"index": {"knn": True, "knn.algo_param.ef_search": ef_search}},
        "mappings": {
            "dynamic": "false",
            "properties": {
                VECTOR_FIELD: {
                    "type": "knn_vector",
                    "dimension": dimension,
                    "method": {
                        "name": "hnsw",
                        "engine": "faiss",
                        "space_type": space,
                        "parameters": {"m": m, "ef_construction": ef_construction},
                    },
                },
                "chunk_id": {"type": "keyword"},
                "document_id": {"type": "keyword"},
                "generation": {"type": "long"},
                "text": {"type": "text"},
                "metadata": {
                    "type": "object",
                    "dynamic": "false",
                    "properties": {name: {"type": kind} for name, kind in METADATA_TYPES.items()},
                },
            },
        },
    }


def mapping_fingerprint(body: Mapping[str, Any]) -> str:
    """Short stable hash of an index body: equal bodies name the same concrete index."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def concrete_index_name(alias: str, body: Mapping[str, Any]) -> str:
    return f"{alias}-{mapping_fingerprint(body)}"


@dataclass(frozen=True)
class IndexState:
    """Where the alias points after ``ensure_index`` and what changed."""

    alias: str
    index: str
    created: bool
    previous: tuple[str, ...]  # indexes the alias pointed to before, if it moved

    @property
    def moved(self) -> bool:
        return bool(self.previous)


def alias_targets(client: Any, alias: str) -> list[str]:
    """Concrete indexes behind ``alias`` ([] when it does not exist)."""
    from opensearchpy.exceptions import NotFoundError

    try:
        found = client.indices.get_alias(name=alias)
    except NotFoundError:
        return []
    return sorted(found)


def ensure_index(client: Any, alias: str, body: Mapping[str, Any]) -> IndexState:
    """Create the index for ``body`` if missing and point ``alias`` at it, atomically.

    A changed body gives a new index name, so a mapping change never updates a live index in
    place (OpenSearch cannot change a knn_vector's dimension or method): the alias moves to the
    new, empty index and the caller must re-ingest. Nothing is deleted here.
    """
    target = concrete_index_name(alias, body)
    if client.indices.exists(index=alias) and not client.indices.exists_alias(name=alias):
        raise IndexMappingConflict(
            f"{alias!r} exists as a concrete index, not an alias; rename or delete it so the "
            f"platform can manage {alias!r} as an alias over versioned indexes"
        )
    created = False
    if not client.indices.exists(index=target):
        client.indices.create(index=target, body=dict(body))
        created = True
    current = alias_targets(client, alias)
    if current != [target]:
        actions: list[dict[str, Any]] = [{"remove": {"index": name, "alias": alias}} for name in current if name != target]
        actions.append({"add": {"index": target, "alias": alias}})
        client.indices.update_aliases(body={"actions": actions})
    return IndexState(alias=alias, index=target, created=created,
                      previous=tuple(name for name in current if name != target))


def _host_args(endpoint: str) -> dict[str, Any]:
    parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise ValueError(f"AOSS_ENDPOINT must be an https URL like https://abc.us-east-1.aoss.amazonaws.com, got {endpoint!r}")
    https = parsed.scheme == "https"
    return {
        "hosts": [{"host": parsed.hostname, "port": parsed.port or (443 if https else 80)}],
        "use_ssl": https,
        "verify_certs": https,
    }


def make_client(endpoint: str, region: str, *, credentials: Any = None, timeout: float = 30.0) -> Any:
    """An opensearch-py client that signs every request with SigV4 for ``aoss``."""
    from opensearchpy import OpenSearch, RequestsHttpConnection
    from opensearchpy.helpers.signer import RequestsAWSV4SignerAuth

    if credentials is None:
        import boto3

        credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials found to sign OpenSearch Serverless requests")
    return OpenSearch(
        **_host_args(endpoint),
        http_auth=RequestsAWSV4SignerAuth(credentials, region, "aoss"),
        connection_class=RequestsHttpConnection,
        timeout=timeout,
        max_retries=3,
        retry_on_status=(429, 502, 503, 504),
        retry_on_timeout=True,
        pool_maxsize=10,
    )


class OpenSearchVectorStore:
    """VectorStore over an OpenSearch Serverless alias (see the module docstring for the rules)."""

    FILTERABLE_FIELDS = FILTERABLE_FIELDS

    def __init__(self, client: Any, alias: str, *, dimension: int, space: str = "cosinesimil",
                 settle_seconds: float = DEFAULT_SETTLE_SECONDS, sleep: Any = time.sleep) -> None:
        if not alias:
            raise ValueError("alias (AOSS_INDEX) must name the index alias")
        self.settle_seconds = settle_seconds
        self.sleep = sleep
        self.client = client
        self.alias = alias
        self.dimension = dimension
        self.space = space
        self.body = index_body(dimension, space)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, *, credentials: Any = None) -> "OpenSearchVectorStore":
        missing = [name for name in ("AOSS_ENDPOINT", "AOSS_INDEX", "EMBEDDING_DIMENSION") if not environ.get(name)]
        if missing:
            raise ValueError(f"OpenSearch Serverless store needs environment variable(s): {', '.join(missing)}")
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise ValueError("AWS_REGION is not set: it is needed to sign OpenSearch Serverless requests")
        try:
            dimension = int(environ["EMBEDDING_DIMENSION"])
        except ValueError:
            raise ValueError(f"EMBEDDING_DIMENSION must be an integer, got {environ['EMBEDDING_DIMENSION']!r}") from None
        try:
            settle = float(environ.get("AOSS_SETTLE_SECONDS") or DEFAULT_SETTLE_SECONDS)
        except ValueError:
            raise ValueError(f"AOSS_SETTLE_SECONDS must be a number of seconds, got {environ['AOSS_SETTLE_SECONDS']!r}") from None
        client = make_client(environ["AOSS_ENDPOINT"], region, credentials=credentials)
        return cls(client, environ["AOSS_INDEX"], dimension=dimension, space=environ.get("VECTOR_SPACE", "cosinesimil"),
                   settle_seconds=settle)

    # -- schema ------------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create the versioned index and alias if the alias is missing.

        When the alias exists (the deploy-time custom resource made it), only its vector
        dimension is checked: a mismatch would make every write fail later, less clearly.
        """
        targets = alias_targets(self.client, self.alias)
        if not targets:
            ensure_index(self.client, self.alias, self.body)
            return
        mapping = self.client.indices.get_mapping(index=self.alias)
        for name, spec in mapping.items():
            vector = spec.get("mappings", {}).get("properties", {}).get(VECTOR_FIELD, {})
            if vector.get("dimension") != self.dimension:
                raise IndexMappingConflict(
                    f"index {name} behind alias {self.alias!r} has {VECTOR_FIELD} dimension "
                    f"{vector.get('dimension')!r}, but EMBEDDING_DIMENSION is {self.dimension}"
                )

    # -- writes ------------------------------------------------------------------------------

    def document_source(self, chunk: Chunk, generation: int = 0) -> dict[str, Any]:
        """The stored JSON of one chunk."""
        if chunk.vector is None:
            raise ValueError(f"chunk {chunk.chunk_id} has no vector: embed chunks before upserting")
        if len(chunk.vector) != self.dimension:
            raise ValueError(
                f"chunk {chunk.chunk_id} vector has {len(chunk.vector)} dimensions, the index expects {self.dimension}"
            )
        return {
            "chunk_id": chunk.chunk_id,
            "document_id": chunk.document_id,
            "generation": generation,
            "text": chunk.text,
            VECTOR_FIELD: [float(x) for x in chunk.vector],
            "metadata": dict(chunk.metadata),
        }

    def stored_chunks(self, document_id: str) -> list[dict[str, Any]]:
        """Every stored chunk of ``document_id`` (``_id``, chunk id, generation, indexed version/sequencer).

        Paged with ``search_after`` on (chunk_id, generation): no 10,000-hit ceiling.
        """
        rows: list[dict[str, Any]] = []
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": LIST_PAGE_SIZE,
                "_source": ["chunk_id", "generation", f"metadata.{INDEXED_VERSION}", f"metadata.{INDEXED_SEQUENCER}"],
                "query": {"term": {"document_id": document_id}},
                "sort": [{"chunk_id": "asc"}, {"generation": "asc"}],
            }
            if after is not None:
                body["search_after"] = after
            hits = self.client.search(index=self.alias, body=body)["hits"]["hits"]
            for hit in hits:
                source = hit.get("_source") or {}
                meta = source.get("metadata") or {}
                rows.append({"_id": hit["_id"], "chunk_id": source.get("chunk_id"),
                             "generation": int(source.get("generation") or 0),
                             "version": meta.get(INDEXED_VERSION), "sequencer": meta.get(INDEXED_SEQUENCER)})
            if len(hits) < LIST_PAGE_SIZE:
                return rows
            after = hits[-1]["sort"]

    def existing_ids(self, document_id: str) -> list[str]:
        """Server-assigned ``_id``s of every stored chunk of ``document_id``."""
        return [row["_id"] for row in self.stored_chunks(document_id)]

    def document_state(self, document_id: str) -> StoredDocument | None:
        """The newest generation's chunk ids, version and sequencer (older generations are leftovers)."""
        rows = self.stored_chunks(document_id)
        if not rows:
            return None
        newest = max(row["generation"] for row in rows)
        current = [row for row in rows if row["generation"] == newest]
        # Leftovers of an older generation make the state differ, so the next write replaces them.
        ids = frozenset(row["chunk_id"] for row in current) | frozenset(
            f"leftover:{row['_id']}" for row in rows if row["generation"] != newest)
        return StoredDocument(ids, current[0]["version"], current[0]["sequencer"])

    @staticmethod
    def _check_order(rows: Sequence[Mapping[str, Any]], document_id: str, sequencer: str | None) -> None:
        held = max((row["sequencer"] for row in rows if row.get("sequencer")), default=None,
                   key=lambda value: value.upper().ljust(64, "0"))
        if sequencer_is_older(sequencer, held):
            raise Superseded(f"{document_id} was written by event {held}, later than {sequencer}")

    def bulk_body(self, chunks: Sequence[Chunk], delete_ids: Sequence[str] = (), generation: int = 0) -> list[dict[str, Any]]:
        """NDJSON lines of one ``_bulk`` request: new chunks first, then deletions of the old ones.

        New before old: a reader never sees the document with no chunks at all.
        """
        lines: list[dict[str, Any]] = []
        for chunk in chunks:
            lines.append({"index": {"_index": self.alias}})
            lines.append(self.document_source(chunk, generation))
        for doc_id in delete_ids:
            lines.append({"delete": {"_index": self.alias, "_id": doc_id}})
        return lines

    def _bulk(self, lines: list[dict[str, Any]]) -> None:
        if not lines:
            return
        response = self.client.bulk(body=lines)
        if response.get("errors"):
            failures = []
            for item in response.get("items", []):
                (action, result), = item.items()
                if result.get("status", 200) >= 300 and not (action == "delete" and result.get("status") == 404):
                    failures.append(f"{action} {result.get('_id', '?')}: {result.get('status')} {result.get('error')}")
            if failures:
                raise RuntimeError(f"bulk request to {self.alias!r} failed for {len(failures)} item(s): " + "; ".join(failures[:5]))

    def upsert(self, document_id: str, chunks: Sequence[Chunk], *, sequencer: str | None = None) -> int:
        if not document_id:
            raise ValueError("document_id must not be empty")
        for chunk in chunks:
            if chunk.document_id != document_id:
                raise ValueError(f"chunk {chunk.chunk_id} belongs to {chunk.document_id!r}, not {document_id!r}")
        rows = self.stored_chunks(document_id)
        # No transactions here: a concurrent later write inside the refresh window is not seen (docs/rag.md).
        self._check_order(rows, document_id, sequencer)
        stale = [row["_id"] for row in rows]
        chunks = list(chunks)
        generation = time.time_ns()
        # Old ids ride with the last batch, so an error mid-way leaves old chunks, not a gap.
        for start in range(0, max(len(chunks), 1), BULK_CHUNKS_PER_REQUEST):
            batch = chunks[start:start + BULK_CHUNKS_PER_REQUEST]
            last = start + BULK_CHUNKS_PER_REQUEST >= len(chunks)
            self._bulk(self.bulk_body(batch, stale if last else (), generation))
        return len(chunks)

    def delete_document(self, document_id: str, *, sequencer: str | None = None) -> int:
        """Delete until a listing made after the refresh window finds nothing left."""
        rows = self.stored_chunks(document_id)
        self._check_order(rows, document_id, sequencer)
        removed = 0
        for _ in range(DELETE_ROUNDS):
            if rows:
                self._bulk(self.bulk_body((), [row["_id"] for row in rows]))
                removed += len(rows)
            elif removed == 0 and self.settle_seconds <= 0:
                return 0
            self.sleep(self.settle_seconds)
            rows = self.stored_chunks(document_id)
            if not rows:
                return removed
        raise RuntimeError(f"chunks of {document_id} still listed after {DELETE_ROUNDS} delete rounds; SQS will retry")

    # -- reads -------------------------------------------------------------------------------

    def search_body(self, vector: Sequence[float], k: int, filters: Mapping[str, FilterValue] | None = None) -> dict[str, Any]:
        """The kNN query: faiss efficient filtering inside the knn clause, vectors left out of hits."""
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 100:
            raise ValueError(f"k must be an integer from 1 to 100, got {k!r}")
        if len(vector) != self.dimension:
            raise ValueError(f"query vector has {len(vector)} dimensions, the index expects {self.dimension}")
        checked = check_filters(filters, self.FILTERABLE_FIELDS)
        # Ask for a few more than k so duplicate generations (see module docstring) can be folded.
        fetch = min(2 * k, 200)
        knn: dict[str, Any] = {"vector": [float(x) for x in vector], "k": fetch}
        if checked:
            terms = [
                {"term": {(name if name == "document_id" else f"metadata.{name}"): value}}
                for name, value in sorted(checked.items())
            ]
            knn["filter"] = {"bool": {"filter": terms}}
        return {"size": fetch, "_source": {"excludes": [VECTOR_FIELD]}, "query": {"knn": {VECTOR_FIELD: knn}}}

    def search(self, vector: Sequence[float], k: int, filters: Mapping[str, FilterValue] | None = None) -> list[Hit]:
        body = self.search_body(vector, k, filters)
        response = self.client.search(index=self.alias, body=body)
        return fold_hits(response["hits"]["hits"], k)


def fold_hits(raw_hits: Sequence[Mapping[str, Any]], k: int) -> list[Hit]:
    """Hits in score order without superseded generations of a document or repeated chunk ids."""
    newest: dict[str, int] = {}
    for raw in raw_hits:
        source = raw["_source"]
        newest[source["document_id"]] = max(newest.get(source["document_id"], 0), int(source.get("generation") or 0))
    hits: list[Hit] = []
    seen: set[str] = set()
    for raw in raw_hits:
        source = raw["_source"]
        if source["chunk_id"] in seen or int(source.get("generation") or 0) < newest[source["document_id"]]:
            continue
        seen.add(source["chunk_id"])
        chunk = Chunk(
            chunk_id=source["chunk_id"],
            document_id=source["document_id"],
            text=source.get("text", ""),
            metadata=dict(source.get("metadata") or {}),
        )
        hits.append(Hit(chunk=chunk, score=float(raw["_score"])))
        if len(hits) == k:
            break
    return hits
