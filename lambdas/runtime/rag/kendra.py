"""KendraRetriever: the search side of the VectorStore interface on an Amazon Kendra index.

Kendra embeds and ranks text itself, so it is queried with the question (``search_text``, the
Retrieve API) rather than with a vector; ``search`` with a vector explains that. Kendra fills
its index from its own S3 data source (created with the index), so ``upsert`` and
``delete_document`` refuse instead of pretending to write.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from lambdas.runtime.rag.model import Chunk, Hit
from lambdas.runtime.rag.store import FILTER_FIELDS, FilterValue, check_filters

# Kendra reports a confidence bucket, not a number; these keep "higher is closer".
CONFIDENCE_SCORES = {"VERY_HIGH": 1.0, "HIGH": 0.75, "MEDIUM": 0.5, "LOW": 0.25, "NOT_AVAILABLE": 0.0}
# Our filter name -> Kendra's reserved document attribute.
ATTRIBUTES = {"language": "_language_code", "document_type": "_file_type", "source_key": "_source_uri"}
assert set(ATTRIBUTES) <= set(FILTER_FIELDS) and all(FILTER_FIELDS[name] is str for name in ATTRIBUTES)
MAX_QUERY_CHARS = 1000  # Retrieve's QueryText limit is in tokens; stay well inside it


class KendraRetriever:
    FILTERABLE_FIELDS = frozenset(ATTRIBUTES)

    def __init__(self, index_id: str, *, client: Any = None, region: str | None = None) -> None:
        if not index_id:
            raise ValueError("KENDRA_INDEX_ID must name the Kendra index")
        if client is None:
            import boto3

            client = boto3.client("kendra", region_name=region)
        self.index_id = index_id
        self.client = client

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, *, client: Any = None) -> "KendraRetriever":
        index_id = environ.get("KENDRA_INDEX_ID")
        if not index_id:
            raise ValueError("the kendra backend needs environment variable KENDRA_INDEX_ID")
        return cls(index_id, client=client, region=environ.get("AWS_REGION"))

    def ensure_schema(self) -> None:
        """Nothing to create: the index is made at deploy."""

    def upsert(self, document_id: str, chunks: Sequence[Chunk], *, sequencer: str | None = None) -> int:
        raise NotImplementedError("Kendra indexes documents through its S3 data source; upload the file instead")

    def delete_document(self, document_id: str, *, sequencer: str | None = None) -> int:
        raise NotImplementedError("Kendra removes documents when its S3 data source syncs a deletion")

    def search(self, vector: Sequence[float], k: int, filters: Mapping[str, FilterValue] | None = None) -> list[Hit]:
        raise TypeError("Kendra ranks text, not vectors: call search_text(question, k, filters)")

    def retrieve_request(self, question: str, k: int, filters: Mapping[str, FilterValue] | None = None) -> dict[str, Any]:
        question = (question or "").strip()
        if not question:
            raise ValueError("question must not be empty")
        if len(question) > MAX_QUERY_CHARS:
            raise ValueError(f"question is {len(question)} characters; Kendra retrieval takes at most {MAX_QUERY_CHARS}")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 100:
            raise ValueError(f"k must be an integer from 1 to 100, got {k!r}")
        request: dict[str, Any] = {"IndexId": self.index_id, "QueryText": question, "PageSize": k}
        checked = check_filters(filters, self.FILTERABLE_FIELDS)
        clauses = [{"EqualsTo": {"Key": ATTRIBUTES[name], "Value": {"StringValue": str(value)}}}
                   for name, value in sorted(checked.items())]
        if len(clauses) == 1:
            request["AttributeFilter"] = clauses[0]
        elif clauses:
            request["AttributeFilter"] = {"AndAllFilters": clauses}
        return request

    def search_text(self, question: str, k: int, filters: Mapping[str, FilterValue] | None = None) -> list[Hit]:
        response = self.client.retrieve(**self.retrieve_request(question, k, filters))
        hits = []
        for item in response.get("ResultItems", []):
            attributes = {a["Key"]: a["Value"] for a in item.get("DocumentAttributes", [])}
            metadata: dict[str, Any] = {"source_key": item.get("DocumentURI"), "title": item.get("DocumentTitle")}
            page = attributes.get("_excerpt_page_number", {}).get("LongValue")
            if page is not None:
                metadata["page"] = int(page)
            chunk = Chunk(chunk_id=item["Id"], document_id=item.get("DocumentId", item["Id"]),
                          text=item.get("Content", ""), metadata=metadata)
            confidence = item.get("ScoreAttributes", {}).get("ScoreConfidence", "NOT_AVAILABLE")
            hits.append(Hit(chunk=chunk, score=CONFIDENCE_SCORES.get(confidence, 0.0)))
        return hits
