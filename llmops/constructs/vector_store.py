"""VectorStore: one construct interface over the RAG retrieval backends, chosen in the config.

``vector_store.backend`` picks the implementation:

- ``opensearch-serverless`` -> ``OpenSearchVectorStore`` (a VECTORSEARCH collection)
- ``aurora-pgvector``       -> ``AuroraVectorStore`` (Aurora PostgreSQL Serverless v2 + pgvector)
- ``kendra``                -> ``KendraRetriever`` (an Amazon Kendra index, text retrieval)

Each gives ``grant_read(grantee)`` / ``grant_write(grantee)`` for Lambda functions and
``connection_environment()``: the environment variables ``lambdas.runtime.rag.store.store_from_env``
reads to build the matching runtime store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


if TYPE_CHECKING:
    from llmops.config import EnvironmentConfig
    from llmops.constructs.network import PlatformNetwork


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


def principal_of(grantee: Any) -> iam.IGrantable:
    """A PlatformFunction or any IGrantable."""
    return grantee.function if hasattr(grantee, "function") and hasattr(grantee, "bundle") else grantee


def connectable_of(grantee: Any):
    """The ec2 connections of a function in the VPC, or None."""
    target = grantee.function if hasattr(grantee, "function") and hasattr(grantee, "bundle") else grantee
    return target if hasattr(target, "connections") else None


def vector_store_for(
    scope: Construct,
    id: str,
    *,
    env_config: "EnvironmentConfig",
    key: kms.IKey,
    network: "PlatformNetwork",
    removal_policy: RemovalPolicy,
    data_bucket: Any = None,
) -> VectorStore:
    """The backend construct the environment's config selects."""
    from llmops.constructs.log_retention import retention_days

    store = env_config.vector_store
    rag = env_config.rag
    prefix = env_config.name_prefix
    log_retention = retention_days(env_config.log_retention_days)
    if store.backend == "opensearch-serverless":
        from llmops.constructs.opensearch_vector_store import OpenSearchVectorStore

        return OpenSearchVectorStore(
            scope, id, collection_name=f"{prefix}-rag", key=key, network=network, dimension=store.dimension,
            space=store.space, standby_replicas=store.standby_replicas, public_access=rag.aoss.public_access,
            removal_policy=removal_policy, log_retention=log_retention,
        )
    if store.backend == "aurora-pgvector":
        from llmops.constructs.aurora_vector_store import AuroraVectorStore

        if store.space != "cosinesimil":
            from llmops.config import ConfigError

            raise ConfigError(
                f"environments.{env_config.name}.vector_store.space: aurora-pgvector indexes cosine distance "
                f"only, got {store.space!r}; allowed: 'cosinesimil'"
            )
        return AuroraVectorStore(
            scope, id, key=key, network=network, dimension=store.dimension, cluster_identifier=f"{prefix}-rag",
            min_capacity=rag.aurora.min_capacity,
            max_capacity=rag.aurora.max_capacity, auto_pause=Duration.minutes(rag.aurora.auto_pause_minutes),
            rotation=Duration.days(rag.aurora.rotation_days), removal_policy=removal_policy,
            log_retention=log_retention,
        )
    if store.backend == "kendra":
        from llmops.constructs.kendra_retriever import KendraRetriever

        if rag.kendra.index_id:
            return KendraRetriever.from_index_id(scope, id, rag.kendra.index_id)
        return KendraRetriever(scope, id, name=f"{prefix}-rag", key=key, edition=rag.kendra.edition,
                               data_bucket=data_bucket, removal_policy=removal_policy)
    raise ValueError(f"vector_store.backend {store.backend!r} has no construct")
