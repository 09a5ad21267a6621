"""AuroraVectorStore: Aurora PostgreSQL Serverless v2 with pgvector, the low-cost RAG backend.

- Min capacity 0 lets an idle cluster pause after ``auto_pause`` (no compute charge while idle;
  the first query after a pause waits ~15 s). An idle OpenSearch Serverless collection costs
  over $5 a day; this is the backend for dev and small workloads.
- Storage encrypted with the platform CMK, in the isolated subnets, reachable only from the
  security groups of functions granted here, IAM database auth enabled.
- Credentials generated into Secrets Manager (CMK-encrypted) and rotated by a Secrets Manager
  hosted rotation function that runs in the same subnets.
- The ``vector`` extension, chunk table and HNSW index are created at deploy by the
  ``rag_pgvector_schema`` custom resource using ``PgVectorStore.ensure_schema``, the same schema code
  the runtime uses.
"""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from llmops.constructs.core.network import PlatformNetwork
from llmops.constructs.core.platform_function import PlatformFunction
from llmops.constructs.rag.vector_store import VectorStore, connectable_of, principal_of
from llmops.constructs.core.custom_resource import custom_resource_provider
from llmops.nag import acknowledge

ENGINE_VERSION = rds.AuroraPostgresEngineVersion.VER_17_5  # auto-pause needs 13.15+/14.12+/15.7+/16.3+
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,54}$")


class AuroraVectorStore(VectorStore):
    """An Aurora PostgreSQL Serverless v2 cluster holding the RAG chunk table."""

    backend = "aurora-pgvector"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        network: PlatformNetwork,
        dimension: int,
        cluster_identifier: str,
        database_name: str = "rag",
        table_name: str = "rag_chunks",
        min_capacity: float = 0,
        max_capacity: float = 4,
        auto_pause: Duration = Duration.minutes(10),
        rotation: Duration = Duration.days(30),
        removal_policy: RemovalPolicy = RemovalPolicy.SNAPSHOT,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
    ) -> None:
        super().__init__(scope, id)
        for prop, value in (("database_name", database_name), ("table_name", table_name)):
            if not _IDENTIFIER.match(value):
                raise ValueError(f"{prop}: must be a lower-case SQL identifier (a-z, 0-9, _), got {value!r}")
        if not 0 <= min_capacity <= max_capacity <= 256:
            raise ValueError(f"min_capacity/max_capacity: need 0 <= min <= max <= 256 ACUs, got {min_capacity}/{max_capacity}")
        if not 1 <= dimension <= 16000:
            raise ValueError(f"dimension: must be 1-16000, got {dimension}")
        self.database_name = database_name
        self.table_name = table_name
        self.dimension = dimension
        self._key = key

        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=network.vpc, allow_all_outbound=False,
            description="RAG Aurora cluster: PostgreSQL from granted functions only",
        )
        destroy = removal_policy == RemovalPolicy.DESTROY
        # Created here (CMK, retention) before RDS would create it unencrypted on first export.
        self.log_group = logs.LogGroup(
            self, "PostgresLogs", log_group_name=f"/aws/rds/cluster/{cluster_identifier}/postgresql",
            encryption_key=key, retention=log_retention, removal_policy=removal_policy if destroy else RemovalPolicy.RETAIN,
        )
        self.cluster = rds.DatabaseCluster(
            self, "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=ENGINE_VERSION),
            cluster_identifier=cluster_identifier,
            credentials=rds.Credentials.from_generated_secret("rag_admin", encryption_key=key,
                                                              exclude_characters=" %+~`#$&*()|[]{}:;<>?!'/@\"\\"),
            writer=rds.ClusterInstance.serverless_v2("Writer", auto_minor_version_upgrade=True, publicly_accessible=False),
            serverless_v2_min_capacity=min_capacity,
            serverless_v2_max_capacity=max_capacity,
            serverless_v2_auto_pause_duration=auto_pause if min_capacity == 0 else None,
            vpc=network.vpc,
            vpc_subnets=network.subnets,
            security_groups=[self.security_group],
            storage_encrypted=True,
            storage_encryption_key=key,
            default_database_name=database_name,
            iam_authentication=True,
            deletion_protection=not destroy,
            removal_policy=removal_policy,
            backup=rds.BackupProps(retention=Duration.days(7 if destroy else 14)),
            cloudwatch_logs_exports=["postgresql"],
            copy_tags_to_snapshot=True,
            # Enhanced monitoring: OS metrics of the writer every minute (RDSOSMetrics log group).
            monitoring_interval=Duration.seconds(60),
        )
        acknowledge(
            self.cluster,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]",
            "Enhanced monitoring's role is assumed by monitoring.rds.amazonaws.com only; AWS's managed policy "
            "writes the RDSOSMetrics log group and is the documented one for it.",
        )
        self.cluster.node.add_dependency(self.log_group)
        self.secret = self.cluster.secret
        acknowledge(
            self.cluster,
            "AwsSolutions-RDS11",
            "A non-default port hides nothing from a client inside the VPC; the cluster sits in isolated "
            "subnets and its security group admits only the functions granted access.",
        )
        if destroy:
            acknowledge(
                self.cluster,
                "AwsSolutions-RDS10",
                "This environment's removal policy is destroy (config removal_policy): the cluster is "
                "disposable and deletion protection would block tearing the environment down.",
            )

        rotation_sg = ec2.SecurityGroup(self, "RotationSecurityGroup", vpc=network.vpc, allow_all_outbound=True,
                                        description="Secrets Manager hosted rotation of the RAG cluster secret")
        self.cluster.connections.allow_default_port_from(rotation_sg, "secret rotation")
        self.rotation = self.secret.add_rotation_schedule(
            "Rotation",
            automatically_after=rotation,
            hosted_rotation=secretsmanager.HostedRotation.postgre_sql_single_user(
                vpc=network.vpc, vpc_subnets=network.subnets, security_groups=[rotation_sg],
            ),
        )

        # Deploy-time schema: extension, table, HNSW index.
        self.schema_function = PlatformFunction(
            self, "SchemaFunction", invoked_by="the custom-resource provider framework (synchronous invoke)", entry="rag_pgvector_schema", runtime_packages=["rag"], key=key, network=network,
            needs_vpc=True,
            description="Creates the pgvector extension, RAG chunk table and HNSW index",
            timeout=Duration.minutes(5), memory_size=256, log_retention=log_retention,
        )
        self.grant_write(self.schema_function)
        self._schema_provider = custom_resource_provider(self, "SchemaProvider", on_event=self.schema_function, key=key, log_retention=log_retention)
        self.schema = self._schema("Schema", table_name, dimension)
        self.arm_schemas: dict[str, CustomResource] = {}

    def _schema(self, id: str, table: str, dimension: int) -> CustomResource:
        schema = CustomResource(
            self, id, service_token=self._schema_provider.service_token, resource_type="Custom::PgVectorSchema",
            properties={"SecretArn": self.secret.secret_arn, "Database": self.database_name, "Table": table,
                        "Dimension": str(dimension)},
        )
        # The writer instance, not just the cluster, must be up before the schema can be created.
        schema.node.add_dependency(self.cluster.node.find_child("Writer"))
        return schema

    def add_arm_index(self, arm: str, dimension: int) -> dict[str, str]:
        """Table ``<table>_<arm>`` with its own vector column size and HNSW index, by the same schema function."""
        table = f"{self.table_name}_{arm.lower().replace('-', '_')}"
        if not _IDENTIFIER.match(table):
            raise ValueError(f"arm {arm!r}: table {table!r} is not a lower-case SQL identifier of at most 55 characters")
        self.arm_schemas[arm] = self._schema(f"ArmSchema{arm}", table, dimension)
        return {"PG_TABLE": table, "EMBEDDING_DIMENSION": str(dimension)}

    # -- grants ------------------------------------------------------------------------------

    def _grant_connect(self, grantee: Any) -> iam.Grant:
        connectable = connectable_of(grantee)
        if connectable is None:
            raise ValueError("grantee: needs a function in the platform VPC (it connects to the cluster over the network)")
        self.cluster.connections.allow_default_port_from(connectable, "RAG function")
        return grant_secret_read(principal_of(grantee), self.secret, self._key)

    def grant_read(self, grantee: Any) -> iam.Grant:
        """Network path to the cluster plus read of the credentials secret (and its CMK)."""
        return self._grant_connect(grantee)

    def grant_write(self, grantee: Any) -> iam.Grant:
        # One database user owns the table: SQL privileges do not split read from write here.
        return self._grant_connect(grantee)

    def connection_environment(self) -> dict[str, str]:
        return {
            "VECTOR_STORE_BACKEND": self.backend,
            "PG_SECRET_ARN": self.secret.secret_arn,
            "PG_DATABASE": self.database_name,
            "PG_TABLE": self.table_name,
            "EMBEDDING_DIMENSION": str(self.dimension),
            "VECTOR_SPACE": "cosinesimil",
        }

    # -- metrics -----------------------------------------------------------------------------

    def metric_serverless_capacity(self, **kwargs: Any) -> cloudwatch.Metric:
        """ACUs in use (0 while paused)."""
        return self.cluster.metric("ServerlessDatabaseCapacity", **kwargs)

    def metric_cpu_utilization(self, **kwargs: Any) -> cloudwatch.Metric:
        return self.cluster.metric_cpu_utilization(**kwargs)

    def metric_database_connections(self, **kwargs: Any) -> cloudwatch.Metric:
        return self.cluster.metric_database_connections(**kwargs)

    # -- imports -----------------------------------------------------------------------------

    @staticmethod
    def from_existing(scope: Construct, id: str, *, secret_arn: str, security_group_id: str, dimension: int,
                      database_name: str = "rag", table_name: str = "rag_chunks", port: int = 5432) -> "ImportedAuroraVectorStore":
        """A cluster made elsewhere: grants open its security group and read its secret; the schema is its owner's."""
        return ImportedAuroraVectorStore(scope, id, secret_arn=secret_arn, security_group_id=security_group_id,
                                         dimension=dimension, database_name=database_name, table_name=table_name, port=port)


class ImportedAuroraVectorStore(VectorStore):
    backend = "aurora-pgvector"

    def __init__(self, scope: Construct, id: str, *, secret_arn: str, security_group_id: str, dimension: int,
                 database_name: str, table_name: str, port: int) -> None:
        super().__init__(scope, id)
        for prop, value in (("database_name", database_name), ("table_name", table_name)):
            if not _IDENTIFIER.match(value):
                raise ValueError(f"{prop}: must be a lower-case SQL identifier (a-z, 0-9, _), got {value!r}")
        self.secret = secretsmanager.Secret.from_secret_complete_arn(self, "Secret", secret_arn)
        self.security_group = ec2.SecurityGroup.from_security_group_id(self, "SecurityGroup", security_group_id,
                                                                       mutable=True)
        self.port, self.dimension, self.database_name, self.table_name = port, dimension, database_name, table_name

    def _grant_connect(self, grantee: Any) -> iam.Grant:
        connectable = connectable_of(grantee)
        if connectable is None:
            raise ValueError("grantee: needs a function in the platform VPC (it connects to the cluster over the network)")
        self.security_group.connections.allow_from(connectable, ec2.Port.tcp(self.port), "RAG function")
        return self.secret.grant_read(principal_of(grantee))

    grant_read = _grant_connect
    grant_write = _grant_connect

    def connection_environment(self) -> dict[str, str]:
        return {"VECTOR_STORE_BACKEND": self.backend, "PG_SECRET_ARN": self.secret.secret_arn,
                "PG_DATABASE": self.database_name, "PG_TABLE": self.table_name,
                "EMBEDDING_DIMENSION": str(self.dimension), "VECTOR_SPACE": "cosinesimil"}


def grant_secret_read(principal: iam.IGrantable, secret: secretsmanager.ISecret, key: kms.IKey) -> iam.Grant:
    """Read one secret and decrypt it through Secrets Manager only.

    Written into the grantee's own policy: ``Secret.grant_read`` would add the role to the platform
    key's policy, making the foundation stack depend on this one (a cycle).
    """
    grant = iam.Grant.add_to_principal(grantee=principal, actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                                       resource_arns=[secret.secret_arn])
    stack = Stack.of(secret)
    principal.grant_principal.add_to_principal_policy(iam.PolicyStatement(
        actions=["kms:Decrypt"], resources=[key.key_arn],
        conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}},
    ))
    return grant
