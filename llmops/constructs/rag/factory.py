"""The backend factory: the ``VectorStore`` construct an environment's config selects.

Kept apart from the base type (``vector_store.py``) so the backends import the base and only this
module imports the backends: no import circle.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from constructs import Construct

from llmops.config import ConfigError, EnvironmentConfig
from llmops.constructs.core.log_retention import retention_days
from llmops.constructs.core.network import PlatformNetwork
from llmops.constructs.rag.aurora_vector_store import AuroraVectorStore
from llmops.constructs.rag.kendra_retriever import KendraRetriever
from llmops.constructs.rag.opensearch_vector_store import OpenSearchVectorStore
from llmops.constructs.rag.vector_store import VectorStore


def vector_store_for(
    scope: Construct,
    id: str,
    *,
    env_config: EnvironmentConfig,
    key: kms.IKey,
    network: PlatformNetwork,
    removal_policy: RemovalPolicy,
    data_bucket: Any = None,
) -> VectorStore:
    """The backend construct the environment's config selects."""
    store = env_config.vector_store
    rag = env_config.rag
    prefix = env_config.name_prefix
    log_retention = retention_days(env_config.log_retention_days)
    if store.backend == "opensearch-serverless":
        return OpenSearchVectorStore(
            scope, id, collection_name=f"{prefix}-rag", key=key, network=network, dimension=store.dimension,
            space=store.space, standby_replicas=store.standby_replicas, public_access=rag.aoss.public_access,
            removal_policy=removal_policy, log_retention=log_retention,
        )
    if store.backend == "aurora-pgvector":
        if store.space != "cosinesimil":
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
        if rag.kendra.index_id:
            return KendraRetriever.from_index_id(scope, id, rag.kendra.index_id)
        return KendraRetriever(scope, id, name=f"{prefix}-rag", key=key, edition=rag.kendra.edition,
                               data_bucket=data_bucket, removal_policy=removal_policy)
    raise ValueError(f"vector_store.backend {store.backend!r} has no construct")
