"""OpenSearchVectorStore: an OpenSearch Serverless VECTORSEARCH collection with its vector index.

- Encryption policy with the platform CMK (created before the collection, as AOSS requires).
- Network policy: reachable only through an AOSS VPC endpoint in the platform's isolated
  subnets, unless ``public_access`` is set (requests are still SigV4/IAM-checked).
- Data-access policy naming exactly the roles granted here, rendered at synth from the grants.
- The index (faiss HNSW ``knn_vector`` + filterable metadata) and its alias are made by the
  ``rag_vector_index`` custom resource, not ``AWS::OpenSearchServerless::Index``: that type has no
  alias and cannot change a vector field's dimension in place, so a mapping change would fail
  or be lost; the custom resource creates a new index, moves the alias, and retries the 403s
  AOSS answers while data-access rules propagate.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jsii
from aws_cdk import Aws, CustomResource, Duration, IStableStringProducer, Lazy, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchserverless as aoss
from constructs import Construct

from llmops.constructs.core.network import PlatformNetwork
from llmops.constructs.core.platform_function import PlatformFunction
from llmops.constructs.rag.vector_store import VectorStore, principal_of
from llmops.constructs.core.custom_resource import custom_resource_provider

_NAME = re.compile(r"^[a-z][a-z0-9-]{2,31}$")
SPACES = ("cosinesimil", "l2", "innerproduct")

READ_PERMISSIONS = ["aoss:DescribeIndex", "aoss:ReadDocument"]
WRITE_PERMISSIONS = ["aoss:DescribeIndex", "aoss:ReadDocument", "aoss:WriteDocument"]
INDEX_ADMIN_PERMISSIONS = ["aoss:CreateIndex", "aoss:DescribeIndex", "aoss:UpdateIndex", "aoss:DeleteIndex"]
ALIAS_ADMIN_PERMISSIONS = ["aoss:CreateCollectionItems", "aoss:DescribeCollectionItems",
                           "aoss:UpdateCollectionItems", "aoss:DeleteCollectionItems"]
ALIAS_READ_PERMISSIONS = ["aoss:DescribeCollectionItems"]


def _check_name(prop: str, value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{prop}: must be 3-32 characters of a-z, 0-9 and '-', starting with a letter, got {value!r}")
    return value


@jsii.implements(IStableStringProducer)
class _Producer:
    """Renders the data-access policy at synth, after every grant was made."""

    def __init__(self, render: Callable[[], str]) -> None:
        self._render = render

    def produce(self) -> str:
        return self._render()


class _DataAccess:
    """Principals per permission set, rendered lazily into one AOSS data-access policy."""

    def __init__(self, collection_name: str) -> None:
        self.collection_name = collection_name
        self.readers: list[str] = []
        self.writers: list[str] = []
        self.admins: list[str] = []

    def add(self, kind: str, role_arn: str) -> None:
        bucket = getattr(self, kind)
        if role_arn not in bucket:
            bucket.append(role_arn)

    def document(self) -> list[dict[str, Any]]:
        coll = self.collection_name
        statements = []
        for principals, index_perms, coll_perms, description in (
            (self.readers, READ_PERMISSIONS, ALIAS_READ_PERMISSIONS, "search the RAG index"),
            (self.writers, WRITE_PERMISSIONS, ALIAS_READ_PERMISSIONS, "write RAG chunks"),
            (self.admins, INDEX_ADMIN_PERMISSIONS, ALIAS_ADMIN_PERMISSIONS, "manage the RAG index and alias"),
        ):
            if principals:
                statements.append({
                    "Description": description,
                    "Rules": [
                        {"ResourceType": "index", "Resource": [f"index/{coll}/*"], "Permission": index_perms},
                        {"ResourceType": "collection", "Resource": [f"collection/{coll}"], "Permission": coll_perms},
                    ],
                    "Principal": list(principals),
                })
        if not statements:
            raise ValueError(f"collection {coll}: no principal was granted access; call grant_read/grant_write")
        return statements


class OpenSearchVectorStore(VectorStore):
    """A VECTORSEARCH collection, its policies, VPC endpoint and versioned vector index."""

    backend = "opensearch-serverless"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        collection_name: str,
        key: kms.IKey,
        network: PlatformNetwork,
        dimension: int,
        space: str = "cosinesimil",
        standby_replicas: bool = True,
        public_access: bool = False,
        index_alias: str = "rag-chunks",
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
    ) -> None:
        super().__init__(scope, id)
        _check_name("collection_name", collection_name)
        if len(collection_name) > 27:
            raise ValueError(f"collection_name: at most 27 characters (policy names add a suffix), got {collection_name!r}")
        if not 2 <= dimension <= 16000:
            raise ValueError(f"dimension: must be 2-16000, got {dimension}")
        if space not in SPACES:
            raise ValueError(f"space: must be one of {', '.join(SPACES)}, got {space!r}")
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,80}", index_alias):
            raise ValueError(f"index_alias: lower-case index name expected, got {index_alias!r}")
        stack = Stack.of(self)
        self.collection_name = collection_name
        self.index_alias = index_alias
        self.dimension = dimension
        self.space = space
        self.public_access = public_access
        self._access = _DataAccess(collection_name)
        resource = [f"collection/{collection_name}"]

        self.encryption_policy = aoss.CfnSecurityPolicy(
            self, "EncryptionPolicy", name=f"{collection_name}-enc", type="encryption",
            description="RAG collection encrypted with the platform CMK",
            policy=stack.to_json_string({"Rules": [{"ResourceType": "collection", "Resource": resource}],
                                         "AWSOwnedKey": False, "KmsARN": key.key_arn}),
        )
        # The platform's functions run in isolated subnets: they always reach the collection through
        # this endpoint (its private DNS), also when public access is switched on for outside callers.
        self.vpc_endpoint = aoss.CfnVpcEndpoint(
            self, "VpcEndpoint", name=f"{collection_name}-vpce",
            vpc_id=network.vpc.vpc_id,
            subnet_ids=network.vpc.select_subnets(**_selection(network)).subnet_ids,
            security_group_ids=[network.endpoint_security_group.security_group_id],
        )
        network_rule: dict[str, Any] = {"Rules": [{"ResourceType": "collection", "Resource": resource}],
                                        "AllowFromPublic": public_access}
        if not public_access:
            network_rule["SourceVPCEs"] = [self.vpc_endpoint.attr_id]
        self.network_policy = aoss.CfnSecurityPolicy(
            self, "NetworkPolicy", name=f"{collection_name}-net", type="network",
            description="RAG collection reachable " + ("publicly (config rag.aoss.public_access)" if public_access
                                                       else "only through the platform VPC endpoint"),
            policy=stack.to_json_string([network_rule]),
        )
        self.collection = aoss.CfnCollection(
            self, "Collection", name=collection_name, type="VECTORSEARCH",
            standby_replicas="ENABLED" if standby_replicas else "DISABLED",
            description="RAG chunks and embeddings",
        )
        self.collection.add_resource_dependency(self.encryption_policy)
        self.collection.add_resource_dependency(self.network_policy)
        self.collection.apply_removal_policy(removal_policy)
        self.access_policy = aoss.CfnAccessPolicy(
            self, "DataAccessPolicy", name=f"{collection_name}-data", type="data",
            description="Roles allowed to read, write or manage the RAG index",
            policy=Lazy.string(_Producer(lambda: stack.to_json_string(self._access.document()))),
        )

        # The index custom resource: its role is the index admin.
        self.index_function = PlatformFunction(
            self, "IndexFunction", invoked_by="the custom-resource provider framework (synchronous invoke)", entry="rag_vector_index", runtime_packages=["rag"], key=key, network=network,
            needs_vpc=True,
            description="Creates the RAG vector index and alias in OpenSearch Serverless",
            timeout=Duration.minutes(10), memory_size=256, log_retention=log_retention,
        )
        self._grant_api(self.index_function.role)
        self._access.add("admins", self.index_function.role.role_arn)
        self._index_provider = custom_resource_provider(self, "IndexProvider", on_event=self.index_function, key=key, log_retention=log_retention)
        self._removal = "destroy" if removal_policy == RemovalPolicy.DESTROY else "retain"
        self.index = self._index("Index", index_alias, dimension)
        self.arm_indexes: dict[str, CustomResource] = {}

    def _index(self, id: str, alias: str, dimension: int) -> CustomResource:
        index = CustomResource(
            self, id, service_token=self._index_provider.service_token, resource_type="Custom::VectorIndex",
            properties={
                "CollectionEndpoint": self.collection.attr_collection_endpoint,
                "Alias": alias,
                "Dimension": str(dimension),
                "Space": self.space,
                "RemovalPolicy": self._removal,
            },
        )
        index.node.add_dependency(self.access_policy)
        index.node.add_dependency(self.vpc_endpoint)
        return index

    def add_arm_index(self, arm: str, dimension: int) -> dict[str, str]:
        """Index and alias ``<alias>-<arm>`` (same collection, so the data-access rules on ``index/<collection>/*`` cover it)."""
        alias = f"{self.index_alias}-{arm.lower()}"
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,80}", alias):
            raise ValueError(f"arm {arm!r}: index alias {alias!r} is not a valid lower-case index name")
        self.arm_indexes[arm] = self._index(f"ArmIndex{arm}", alias, dimension)
        return {"AOSS_INDEX": alias, "EMBEDDING_DIMENSION": str(dimension)}

    # -- grants ------------------------------------------------------------------------------

    @property
    def collection_arn(self) -> str:
        return self.collection.attr_arn

    @property
    def collection_endpoint(self) -> str:
        return self.collection.attr_collection_endpoint

    def _grant_api(self, principal: iam.IGrantable) -> iam.Grant:
        # IAM lets the request reach the collection; the data-access policy then decides per index.
        return iam.Grant.add_to_principal(grantee=principal, actions=["aoss:APIAccessAll"],
                                          resource_arns=[self.collection_arn])

    def _role_arn(self, grantee: Any) -> str:
        principal = principal_of(grantee)
        role = getattr(principal, "role", None) or principal
        arn = getattr(role, "role_arn", None)
        if arn is None:
            raise ValueError("grantee: OpenSearch Serverless data-access policies name IAM roles; pass a function or role")
        return arn

    def grant_read(self, grantee: Any) -> iam.Grant:
        self._access.add("readers", self._role_arn(grantee))
        return self._grant_api(principal_of(grantee))

    def grant_write(self, grantee: Any) -> iam.Grant:
        self._access.add("writers", self._role_arn(grantee))
        return self._grant_api(principal_of(grantee))

    def connection_environment(self) -> dict[str, str]:
        return {
            "VECTOR_STORE_BACKEND": self.backend,
            "AOSS_ENDPOINT": self.collection_endpoint,
            "AOSS_INDEX": self.index_alias,
            "EMBEDDING_DIMENSION": str(self.dimension),
            "VECTOR_SPACE": self.space,
        }

    # -- metrics -----------------------------------------------------------------------------

    def metric(self, metric_name: str, *, statistic: str = "Average", period: Duration = Duration.minutes(5)) -> cloudwatch.Metric:
        """A metric of this collection in the ``AWS/AOSS`` namespace."""
        return cloudwatch.Metric(
            namespace="AWS/AOSS", metric_name=metric_name, statistic=statistic, period=period,
            dimensions_map={"CollectionName": self.collection_name, "CollectionId": self.collection.attr_id,
                            "ClientId": Aws.ACCOUNT_ID},
        )

    def metric_search_latency(self, **kwargs: Any) -> cloudwatch.Metric:
        return self.metric("SearchRequestLatency", **kwargs)

    def metric_search_errors(self, **kwargs: Any) -> cloudwatch.Metric:
        return self.metric("SearchRequestErrors", statistic="Sum", **kwargs)

    def metric_ingestion_errors(self, **kwargs: Any) -> cloudwatch.Metric:
        return self.metric("IngestionRequestErrors", statistic="Sum", **kwargs)


class ImportedOpenSearchVectorStore(VectorStore):
    """A collection and index made elsewhere: grants add IAM access and a data-access policy of its own."""

    backend = "opensearch-serverless"

    def __init__(self, scope: Construct, id: str, *, collection_name: str, collection_arn: str, collection_endpoint: str,
                 index_alias: str, dimension: int, space: str, access_policy_name: str) -> None:
        super().__init__(scope, id)
        _check_name("collection_name", collection_name)
        _check_name("access_policy_name", access_policy_name)
        if space not in SPACES:
            raise ValueError(f"space: must be one of {', '.join(SPACES)}, got {space!r}")
        stack = Stack.of(self)
        self.collection_name, self.collection_arn, self.collection_endpoint = collection_name, collection_arn, collection_endpoint
        self.index_alias, self.dimension, self.space = index_alias, dimension, space
        self._access = _DataAccess(collection_name)
        self.access_policy = aoss.CfnAccessPolicy(
            self, "DataAccessPolicy", name=access_policy_name, type="data",
            description="Platform roles allowed to read or write an existing RAG collection",
            policy=Lazy.string(_Producer(lambda: stack.to_json_string(self._access.document()))),
        )

    grant_read = OpenSearchVectorStore.grant_read
    grant_write = OpenSearchVectorStore.grant_write
    _grant_api = OpenSearchVectorStore._grant_api
    _role_arn = OpenSearchVectorStore._role_arn
    connection_environment = OpenSearchVectorStore.connection_environment


def _from_collection_attributes(scope: Construct, id: str, *, collection_name: str, collection_arn: str,
                                collection_endpoint: str, dimension: int, index_alias: str = "rag-chunks",
                                space: str = "cosinesimil", access_policy_name: str | None = None) -> ImportedOpenSearchVectorStore:
    """Use an existing collection (its index must already exist behind ``index_alias``)."""
    return ImportedOpenSearchVectorStore(
        scope, id, collection_name=collection_name, collection_arn=collection_arn, collection_endpoint=collection_endpoint,
        index_alias=index_alias, dimension=dimension, space=space,
        access_policy_name=access_policy_name or f"{collection_name[:24]}-plat",
    )


OpenSearchVectorStore.from_collection_attributes = staticmethod(_from_collection_attributes)


def _selection(network: PlatformNetwork) -> dict[str, Any]:
    subnets = network.subnets
    return {"subnet_type": subnets.subnet_type} if subnets.subnet_type is not None else {"subnet_group_name": subnets.subnet_group_name}
