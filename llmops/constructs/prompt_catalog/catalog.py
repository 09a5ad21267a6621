"""PromptCatalog: the DynamoDB table of versioned prompt templates, plus its S3 overflow.

Item layout (see ``lambdas/runtime/prompt_catalog/store.py``): ``pk``/``sk`` string keys and a sparse
``gsi1`` index (``gsi1pk``/``gsi1sk``) that lists prompts. Versions whose content exceeds the
DynamoDB item limit are stored as objects under ``overflow_prefix`` in the overflow bucket
(the foundation artifacts bucket), referenced from the item.

Access is granted by intent: ``grant_render`` (what a runtime client needs: read an alias and
a version), ``grant_read`` (also list), ``grant_write`` (also create versions and move aliases;
never delete: versions are immutable).

Version immutability holds for every grantee because only one principal can write a version:
the version writer function (``add_version_writer``; ``lambdas/prompt_catalog_writer``) holds the
table's only ``PutItem`` and metadata ``UpdateItem``, and creates versions only with
``attribute_not_exists``. ``grant_write`` gives no ``PutItem`` or ``BatchWriteItem`` at all: it
gives ``lambda:InvokeFunction`` on the writer (versions and metadata go through it) and an
``UpdateItem`` whose ``dynamodb:Attributes`` may name only alias and sync-state attributes, none
of which a version item has, so a grantee cannot create, replace or change any attribute of a
version, whatever request it sends.
"""

from __future__ import annotations

import re

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from llmops.constructs.core.secure_bucket import SecureBucket

LIST_INDEX = "gsi1"
METRICS_NAMESPACE = "LLMOps"
API_SERVICE = "prompt_catalog_api"
# Keep in step with lambdas/runtime/prompt_catalog/store.py (a test replays the store's writes against this policy).
KEY_ATTRIBUTES = ("pk", "sk")
VERSION_ATTRIBUTES = ("prompt_id", "version", "content_hash", "kind", "technique", "change_note", "author",
                      "created_at", "content_json", "content_ref")
# Written by the version writer only (created_at and prompt_id are version attributes too).
META_ATTRIBUTES = ("prompt_id", "description", "owner", "tags", "latest_version", "created_at", "updated_at",
                   "gsi1pk", "gsi1sk")
# Written by grant_write grantees: no version item has any of these.
ALIAS_ATTRIBUTES = ("targets", "revision", "updated_at", "updated_by")
SYNC_ATTRIBUTES = ("sync_hash", "sync_version", "sync_aliases")
WRITER_ENV = "PROMPT_VERSION_WRITER"  # lambdas/runtime/prompt_catalog/writer.py reads it
_PREFIX_RE = re.compile(r"^[A-Za-z0-9!_.()'-]+(/[A-Za-z0-9!_.()'-]+)*/$")


class _CatalogAccess:
    """Grants and metrics shared by a catalog built here and one imported by name."""

    table: dynamodb.ITable
    key: kms.IKey
    overflow_bucket: SecureBucket | None
    overflow_prefix: str
    version_writer_arn: str | None = None

    @property
    def table_name(self) -> str:
        return self.table.table_name

    def _grant(self, grantee: iam.IGrantable, actions: list[str], *, index: bool) -> iam.Grant:
        resources = [self.table.table_arn] + ([f"{self.table.table_arn}/index/{LIST_INDEX}"] if index else [])
        return iam.Grant.add_to_principal(grantee=grantee, actions=actions, resource_arns=resources)

    def grant_render(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read aliases and versions (what ``PromptCatalogClient.render`` does), nothing else."""
        grant = self._grant(grantee, ["dynamodb:GetItem", "dynamodb:Query"], index=False)
        self.key.grant(grantee, "kms:Decrypt")
        if self.overflow_bucket is not None:
            self.overflow_bucket.grant_read(grantee, self.overflow_prefix)
        return grant

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Render, plus list prompts (the list index) and versions."""
        grant = self._grant(grantee, ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"], index=True)
        self.key.grant(grantee, "kms:Decrypt")
        if self.overflow_bucket is not None:
            self.overflow_bucket.grant_read(grantee, self.overflow_prefix)
        return grant

    def grant_write(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read, plus create versions and write metadata through the version writer (invoke only), and
        move aliases and record sync state (UpdateItem of attributes no version item has).
        No PutItem, no BatchWriteItem, no deletes: no grantee can write a version item."""
        if self.version_writer_arn is None:
            raise ValueError("PromptCatalog.grant_write: add the version writer first (add_version_writer), "
                             "the only principal that may create versions")
        self.grant_read(grantee)
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["dynamodb:UpdateItem"], resource_arns=[self.table.table_arn],
            conditions={"ForAllValues:StringEquals": {"dynamodb:Attributes": sorted(set(KEY_ATTRIBUTES + ALIAS_ATTRIBUTES + SYNC_ATTRIBUTES))}},
        )
        self.key.grant(grantee, "kms:Encrypt", "kms:GenerateDataKey")
        return iam.Grant.add_to_principal(grantee=grantee, actions=["lambda:InvokeFunction"], resource_arns=[self.version_writer_arn])

    def version_writer_environment(self) -> dict[str, str]:
        """What a grant_write grantee's runtime store needs to write through the writer."""
        if self.version_writer_arn is None:
            raise ValueError("PromptCatalog.version_writer_environment: add the version writer first (add_version_writer)")
        return {WRITER_ENV: self.version_writer_arn}

    def _grant_version_writer(self, grantee: iam.IGrantable) -> None:
        """The one principal that may PutItem version items (always as a conditional create) and write metadata."""
        self.grant_read(grantee)
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["dynamodb:UpdateItem"], resource_arns=[self.table.table_arn],
            conditions={"ForAllValues:StringEquals": {"dynamodb:Attributes": sorted(set(KEY_ATTRIBUTES + META_ATTRIBUTES))}},
        )
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["dynamodb:PutItem"], resource_arns=[self.table.table_arn],
            conditions={
                "ForAllValues:StringEquals": {"dynamodb:Attributes": sorted(set(KEY_ATTRIBUTES + VERSION_ATTRIBUTES))},
                "ForAnyValue:StringEquals": {"dynamodb:Attributes": ["content_hash"]},
            },
        )
        self.key.grant(grantee, "kms:Encrypt", "kms:GenerateDataKey")
        if self.overflow_bucket is not None:
            self.overflow_bucket.grant_write(grantee, self.overflow_prefix)

    # ---- metrics ----------------------------------------------------------------------

    def _table_metric(self, name: str, statistic: str, period: Duration) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/DynamoDB", metric_name=name, dimensions_map={"TableName": self.table.table_name},
            statistic=statistic, period=period,
        )

    def metric_conditional_check_failures(self, period: Duration = Duration.minutes(5)) -> cloudwatch.Metric:
        """Version-number races and stale alias moves (each retried or answered 409)."""
        return self._table_metric("ConditionalCheckFailedRequests", "Sum", period)

    def metric_throttled_requests(self, period: Duration = Duration.minutes(5)) -> cloudwatch.Metric:
        return self._table_metric("ThrottledRequests", "Sum", period)

    def metric_system_errors(self, period: Duration = Duration.minutes(5)) -> cloudwatch.Metric:
        return self._table_metric("SystemErrors", "Sum", period)

    def _api_metric(self, name: str, period: Duration) -> cloudwatch.Metric:
        # Powertools EMF metrics carry the function's service name as their only dimension.
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE, metric_name=name, dimensions_map={"service": API_SERVICE}, statistic="Sum", period=period
        )

    def metric_renders(self, period: Duration = Duration.minutes(5)) -> cloudwatch.Metric:
        return self._api_metric("PromptRendered", period)

    def metric_versions_created(self, period: Duration = Duration.hours(1)) -> cloudwatch.Metric:
        return self._api_metric("PromptVersionCreated", period)

    def metric_alias_conflicts(self, period: Duration = Duration.minutes(5)) -> cloudwatch.Metric:
        return self._api_metric("PromptAliasConflict", period)


class PromptCatalog(Construct, _CatalogAccess):
    """A CMK-encrypted, point-in-time-recoverable table of prompt versions and aliases."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        overflow_bucket: SecureBucket,
        overflow_prefix: str = "prompts/",
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        deletion_protection: bool = True,
        table_name: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        if key is None:
            raise ValueError("PromptCatalog: 'key' is required (the table is encrypted with the platform CMK)")
        if overflow_bucket is None:
            raise ValueError("PromptCatalog: 'overflow_bucket' is required (templates over the item limit go to S3)")
        if not _PREFIX_RE.match(overflow_prefix):
            raise ValueError(f"PromptCatalog: 'overflow_prefix' must be a relative key prefix ending in '/', got {overflow_prefix!r}")
        if table_name is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", table_name):
            raise ValueError(f"PromptCatalog: 'table_name' must be 3-255 characters of A-Z, a-z, 0-9, '_', '-', '.', got {table_name!r}")
        self.key = key
        self.overflow_bucket = overflow_bucket
        self.overflow_prefix = overflow_prefix
        string = dynamodb.AttributeType.STRING
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=table_name,
            partition_key=dynamodb.Attribute(name="pk", type=string),
            sort_key=dynamodb.Attribute(name="sk", type=string),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            deletion_protection=deletion_protection,
            removal_policy=removal_policy,
        )
        self.table.add_global_secondary_index(
            index_name=LIST_INDEX,
            partition_key=dynamodb.Attribute(name="gsi1pk", type=string),
            sort_key=dynamodb.Attribute(name="gsi1sk", type=string),
            projection_type=dynamodb.ProjectionType.ALL,
        )

    @property
    def table_arn(self) -> str:
        return self.table.table_arn

    def add_version_writer(self, function) -> None:
        """Make ``function`` (a PlatformFunction running ``prompt_catalog_writer``) the catalog's only
        version writer. Give it ``runtime_environment()`` without ``version_writer_environment()``."""
        if self.version_writer_arn is not None:
            raise ValueError("PromptCatalog.add_version_writer: the catalog already has its version writer (there is exactly one)")
        self._grant_version_writer(function.role)
        # A PlatformFunction wraps its lambda Function; a plain Function is accepted too.
        self.version_writer_arn = getattr(function, "function", function).function_arn

    def runtime_environment(self) -> dict[str, str]:
        """Environment variables the runtime store and client read."""
        return {
            "PROMPT_TABLE_NAME": self.table.table_name,
            "PROMPT_OVERFLOW_BUCKET": self.overflow_bucket.bucket_name,
            "PROMPT_OVERFLOW_PREFIX": self.overflow_prefix,
        }

    @staticmethod
    def from_table_name(
        scope: Construct,
        id: str,
        *,
        table_name: str,
        key: kms.IKey,
        overflow_bucket: SecureBucket | None = None,
        overflow_prefix: str = "prompts/",
        version_writer_arn: str | None = None,
    ) -> "ImportedPromptCatalog":
        """A catalog deployed elsewhere (e.g. ``<name_prefix>-prompt-catalog``), for its grants
        (``grant_write`` needs its version writer's ARN)."""
        return ImportedPromptCatalog(scope, id, table_name=table_name, key=key, overflow_bucket=overflow_bucket,
                                     overflow_prefix=overflow_prefix, version_writer_arn=version_writer_arn)


class ImportedPromptCatalog(Construct, _CatalogAccess):
    def __init__(self, scope: Construct, id: str, *, table_name: str, key: kms.IKey, overflow_bucket: SecureBucket | None,
                 overflow_prefix: str, version_writer_arn: str | None = None) -> None:
        super().__init__(scope, id)
        self.version_writer_arn = version_writer_arn
        self.key = key
        self.overflow_bucket = overflow_bucket
        self.overflow_prefix = overflow_prefix
        self.table = dynamodb.Table.from_table_attributes(
            self, "Table", table_name=table_name, encryption_key=key, global_indexes=[LIST_INDEX]
        )
