"""KendraRetriever: an Amazon Kendra index (new or existing) as the RAG retriever.

A new index is encrypted with the platform CMK and, when a data bucket is given, filled by a
Kendra S3 data source over ``uploads/`` (Kendra parses, chunks and embeds documents itself, so
the platform's ingestion queue is not used with this backend). Off by default: a Developer
Edition index costs more per month than an idle Aurora cluster.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kendra as kendra
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from llmops.constructs.rag.vector_store import VectorStore, principal_of
from llmops.nag import acknowledge, acknowledge_wildcard_resource

READ_ACTIONS = ["kendra:Retrieve", "kendra:Query"]
WRITE_ACTIONS = ["kendra:BatchPutDocument", "kendra:BatchDeleteDocument"]


class KendraRetriever(VectorStore):
    backend = "kendra"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        key: kms.IKey,
        edition: str = "DEVELOPER_EDITION",
        data_bucket: Any = None,
        data_prefixes: tuple[str, ...] = ("uploads/",),
        sync_schedule: str = "cron(0 * * * ? *)",
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        index_id: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.data_source: kendra.CfnDataSource | None = None
        if index_id is not None:  # imported
            self.index_id = index_id
            self.index = None
            return
        if edition not in ("DEVELOPER_EDITION", "ENTERPRISE_EDITION"):
            raise ValueError(f"edition: DEVELOPER_EDITION or ENTERPRISE_EDITION, got {edition!r}")
        self.role = iam.Role(self, "IndexRole", assumed_by=iam.ServicePrincipal("kendra.amazonaws.com"),
                             description="Amazon Kendra index: metrics and logs")
        log_groups = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws/kendra/*"
        self.role.add_to_policy(iam.PolicyStatement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                                                    conditions={"StringEquals": {"cloudwatch:namespace": "AWS/Kendra"}}))
        self.role.add_to_policy(iam.PolicyStatement(actions=["logs:DescribeLogGroups"], resources=["*"]))
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[log_groups, f"{log_groups}:log-stream:*"]))
        # Exact actions (grant_encrypt_decrypt would add kms:ReEncrypt*/GenerateDataKey* wildcards).
        self.role.add_to_policy(iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                                                    resources=[key.key_arn]))
        policy = self.role.node.find_child("DefaultPolicy")
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]",
                    "cloudwatch:PutMetricData (limited to the AWS/Kendra namespace by condition) and "
                    "logs:DescribeLogGroups have no resource-level permissions.")
        acknowledge_wildcard_resource(policy, log_groups, "Kendra names its log groups under /aws/kendra/ when the index is created.")
        acknowledge_wildcard_resource(policy, f"{log_groups}:log-stream:*",
                                      "Kendra names its log streams at runtime, inside its own log groups.")
        self.index = kendra.CfnIndex(
            self, "Index", name=name, edition=edition, role_arn=self.role.role_arn,
            server_side_encryption_configuration=kendra.CfnIndex.ServerSideEncryptionConfigurationProperty(kms_key_id=key.key_id),
            description="RAG retriever index",
        )
        self.index.apply_removal_policy(removal_policy)
        self.index.node.add_dependency(self.role.node.find_child("DefaultPolicy"))  # Kendra checks the role at create
        self.index_id = self.index.attr_id
        if data_bucket is not None:
            bucket: s3.IBucket = getattr(data_bucket, "bucket", data_bucket)
            source_role = iam.Role(self, "DataSourceRole", assumed_by=iam.ServicePrincipal("kendra.amazonaws.com"),
                                   description="Kendra S3 data source: reads RAG uploads")
            for prefix in data_prefixes:
                data_bucket.grant_read(source_role, prefix)  # SecureBucket: exact actions, prefix-scoped
            iam.Grant.add_to_principal(grantee=source_role, actions=WRITE_ACTIONS, resource_arns=[self.index_arn])
            self.data_source = kendra.CfnDataSource(
                self, "S3Source", index_id=self.index_id, name=f"{name}-s3", type="S3", role_arn=source_role.role_arn,
                schedule=sync_schedule,
                data_source_configuration=kendra.CfnDataSource.DataSourceConfigurationProperty(
                    s3_configuration=kendra.CfnDataSource.S3DataSourceConfigurationProperty(
                        bucket_name=bucket.bucket_name, inclusion_prefixes=list(data_prefixes))),
            )
            self.data_source.node.add_dependency(source_role.node.find_child("DefaultPolicy"))
            acknowledge(self.data_source, "CloudFormation-Validate::W9009",
                        "S3Configuration is deprecated for TemplateConfiguration (the S3 connector template); "
                        "kept until that template is verified against a live index.")

    @classmethod
    def from_index_id(cls, scope: Construct, id: str, index_id: str) -> "KendraRetriever":
        """An existing index (its data sources are managed by its owner)."""
        return cls(scope, id, name="imported", key=None, index_id=index_id)  # type: ignore[arg-type]

    @property
    def index_arn(self) -> str:
        return Stack.of(self).format_arn(service="kendra", resource="index", resource_name=self.index_id)

    def grant_read(self, grantee: Any) -> iam.Grant:
        return iam.Grant.add_to_principal(grantee=principal_of(grantee), actions=READ_ACTIONS, resource_arns=[self.index_arn])

    def grant_write(self, grantee: Any) -> iam.Grant:
        return iam.Grant.add_to_principal(grantee=principal_of(grantee), actions=WRITE_ACTIONS, resource_arns=[self.index_arn])

    def connection_environment(self) -> dict[str, str]:
        return {"VECTOR_STORE_BACKEND": self.backend, "KENDRA_INDEX_ID": self.index_id}


