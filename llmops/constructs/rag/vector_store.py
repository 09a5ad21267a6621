"""VectorStore: one construct interface over the RAG retrieval backends, chosen in the config.

``vector_store.backend`` picks the implementation (``llmops.constructs.rag.factory``):

- ``opensearch-serverless`` -> ``OpenSearchVectorStore`` (a VECTORSEARCH collection)
- ``aurora-pgvector``       -> ``AuroraVectorStore`` (Aurora PostgreSQL Serverless v2 + pgvector)
- ``kendra``                -> ``KendraRetriever`` (an Amazon Kendra index, text retrieval)

Each gives ``grant_read(grantee)`` / ``grant_write(grantee)`` for Lambda functions and
``connection_environment()``: the environment variables ``lambdas.runtime.rag.store.store_from_env``
reads to build the matching runtime store.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_iam as iam
from constructs import Construct


class VectorStore(Construct):
    """Base of the backend constructs: what the RAG stack needs from any of them."""

    backend: str = ""

    def grant_read(self, grantee: Any) -> None:
        """Let ``grantee`` (a PlatformFunction or lambda Function) search the store."""
        raise NotImplementedError

    def grant_write(self, grantee: Any) -> None:
        """Let ``grantee`` write and delete chunks (and read, which replacing chunks needs)."""
        raise NotImplementedError

    def connection_environment(self) -> dict[str, str]:
        """Lambda environment variables naming this store (``VECTOR_STORE_BACKEND`` and its own)."""
        raise NotImplementedError

    def add_arm_index(self, arm: str, dimension: int) -> dict[str, str]:
        """An index of its own for embedding A/B arm ``arm``; returns the variables that point a function at it
        (what differs from ``connection_environment``)."""
        raise ValueError(f"{type(self).__name__}: this backend holds one index; an embedding A/B needs OpenSearch "
                         "Serverless or Aurora pgvector")


def principal_of(grantee: Any) -> iam.IGrantable:
    """A PlatformFunction or any IGrantable."""
    return grantee.function if hasattr(grantee, "function") and hasattr(grantee, "bundle") else grantee


def connectable_of(grantee: Any):
    """The ec2 connections of a function in the VPC, or None."""
    target = grantee.function if hasattr(grantee, "function") and hasattr(grantee, "bundle") else grantee
    return target if hasattr(target, "connections") else None
