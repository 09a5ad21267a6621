"""SecureBucket and AccessLogBucket: S3 buckets with the platform's safe defaults."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from llmops.constructs.core.scanner import scanner_exception
from llmops.nag import acknowledge, acknowledge_wildcard_resource


class AccessLogBucket(Construct):
    """Destination of S3 server access logs for the environment's buckets.

    S3 server access logging only delivers to SSE-S3 buckets, so this one bucket is not
    encrypted with the CMK; it holds request metadata, never platform data.
    """

    def __init__(self, scope: Construct, id: str, *, removal_policy: RemovalPolicy, expire_after_days: int = 365) -> None:
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=removal_policy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(expire_after_days),
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
        )
        scanner_exception(self.bucket, "bucket-logging",
                          "This is the access-log destination of every platform bucket; S3 cannot log a bucket's "
                          "access into itself without logging its own log deliveries.")
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "This bucket is the server-access-log destination; logging it into itself would loop.",
        )


class SecureBucket(Construct):
    """A private, versioned, CMK-encrypted, SSL-only bucket that logs access to ``access_logs``.

    The name is deterministic (``<prefix>-<purpose>-<account>-<region>``) so other stacks can
    build object ARNs for least-privilege grants without cross-stack exports. ``grant_*``
    methods name exact actions (no ``s3:*`` or ``GetObject*``) on a key prefix and acknowledge
    the one object-wildcard cdk-nag finding that a prefix grant necessarily has.
    ``from_bucket_name`` imports an existing bucket for teams that bring their own.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket_name: str,
        key: kms.IKey,
        access_logs: s3.IBucket,
        removal_policy: RemovalPolicy,
        event_bridge_enabled: bool = False,
        noncurrent_version_days: int = 90,
        object_lock: tuple[str, int] | None = None,
    ) -> None:
        super().__init__(scope, id)
        if key is None:
            raise ValueError("SecureBucket: 'key' is required (buckets are encrypted with the platform CMK)")
        if not bucket_name:
            raise ValueError("SecureBucket: 'bucket_name' is required")
        lock_args: dict[str, object] = {}
        if object_lock is not None:
            mode, days = object_lock
            if mode not in ("GOVERNANCE", "COMPLIANCE") or days < 1:
                raise ValueError(f"SecureBucket: object_lock is (GOVERNANCE|COMPLIANCE, days >= 1), got {object_lock!r}")
            retention = s3.ObjectLockRetention.governance if mode == "GOVERNANCE" else s3.ObjectLockRetention.compliance
            lock_args = {"object_lock_enabled": True, "object_lock_default_retention": retention(Duration.days(days))}
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,  # one KMS call per bucket key instead of per object: cost
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"{id.lower()}/",
            removal_policy=removal_policy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(noncurrent_version_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            **lock_args,
        )
        if event_bridge_enabled:
            # Set on the L1: the L2 flag deploys a notifications custom-resource Lambda for it.
            self.bucket.node.default_child.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
                event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True)
            )
        self.key = key
        self._name = bucket_name

    @staticmethod
    def from_bucket_name(scope: Construct, id: str, bucket_name: str) -> s3.IBucket:
        return s3.Bucket.from_bucket_name(scope, id, bucket_name)

    @property
    def bucket_name(self) -> str:
        """The deterministic name (pseudo parameters only): safe to use from any stack."""
        return self._name

    @property
    def bucket_arn(self) -> str:
        return f"arn:{_partition()}:s3:::{self._name}"

    def arn_for_objects(self, prefix: str = "*") -> str:
        return f"{self.bucket_arn}/{_object_pattern(prefix)}"

    def grant_read(self, grantee: iam.IGrantable, prefix: str = "*") -> iam.Grant:
        """Get and list objects under ``prefix`` (e.g. ``curated/``), and decrypt them."""
        grant = self._grant_objects(grantee, prefix, ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging"], "read")
        iam.Grant.add_to_principal(grantee=grantee, actions=["s3:ListBucket"], resource_arns=[self.bucket_arn])
        self.key.grant(grantee, "kms:Decrypt")
        return grant

    def grant_write(self, grantee: iam.IGrantable, prefix: str = "*") -> iam.Grant:
        """Put objects under ``prefix``, encrypting them with the bucket's key."""
        grant = self._grant_objects(grantee, prefix, ["s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload"], "write")
        # Decrypt is needed too: multipart uploads read back the data key.
        self.key.grant(grantee, "kms:GenerateDataKey", "kms:Decrypt")
        return grant

    def grant_read_write(self, grantee: iam.IGrantable, prefix: str = "*") -> iam.Grant:
        self.grant_read(grantee, prefix)
        return self.grant_write(grantee, prefix)

    def grant_delete(self, grantee: iam.IGrantable, prefix: str = "*") -> iam.Grant:
        return self._grant_objects(grantee, prefix, ["s3:DeleteObject"], "delete")

    def _grant_objects(self, grantee: iam.IGrantable, prefix: str, actions: list[str], verb: str) -> iam.Grant:
        resource = self.arn_for_objects(prefix)
        grant = iam.Grant.add_to_principal(grantee=grantee, actions=actions, resource_arns=[resource])
        principal = grantee.grant_principal
        if isinstance(principal, Construct):
            acknowledge_wildcard_resource(
                principal,
                resource,
                f"Grants {verb} on objects under the '{prefix}' prefix of the {self.node.id} bucket only; "
                "object keys are created at run time, so the ARN ends in a wildcard.",
            )
        return grant


_PARTITION: list[str] = []


def _partition() -> str:
    """``Aws.PARTITION``, a constant token, read over jsii once per process (bucket ARNs are built ~300 times)."""
    if not _PARTITION:
        _PARTITION.append(Aws.PARTITION)
    return _PARTITION[0]


def _object_pattern(prefix: str) -> str:
    if prefix in ("", "*"):
        return "*"
    if prefix.startswith("/") or ".." in prefix:
        raise ValueError(f"prefix: must be a relative key prefix like 'curated/', got {prefix!r}")
    return prefix if prefix.endswith("*") else f"{prefix}*"
