"""FoundationStack: the security baseline every other stack of an environment builds on."""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Fn, RemovalPolicy, Stack
from constructs import Construct

from llmops.config import EnvironmentConfig
from llmops.constructs.core import AccessLogBucket, PlatformKey, PlatformNetwork, SecureBucket
from llmops.constructs.cost import EnvironmentBudget

REMOVAL_POLICIES = {
    "destroy": RemovalPolicy.DESTROY,
    "retain": RemovalPolicy.RETAIN,
    "snapshot": RemovalPolicy.SNAPSHOT,
}


def removal_policy(env_config: EnvironmentConfig, *, supports_snapshot: bool = False) -> RemovalPolicy:
    """The environment's removal policy for a resource (SNAPSHOT becomes RETAIN where unsupported)."""
    policy = REMOVAL_POLICIES[env_config.removal_policy]
    if policy == RemovalPolicy.SNAPSHOT and not supports_snapshot:
        return RemovalPolicy.RETAIN
    return policy


class FoundationStack(Stack):
    """The environment's key, buckets and network.

    - ``key``: the customer-managed KMS key (rotating) that encrypts data, logs and volumes.
    - ``access_logs``: the S3 server-access-log bucket.
    - ``artifacts``: model artifacts, evaluation reports, pipeline outputs.
    - ``data``: documents and datasets (``raw/``, ``curated/``, ``uploads/``, ``quarantine/``,
      ``datasets/``), with EventBridge notifications on so capability stacks subscribe by rule.
    - ``network``: the isolated VPC with its endpoints and flow logs.
    """

    def __init__(self, scope: Construct, id: str, *, env_config: EnvironmentConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self.env_config = env_config
        prefix = env_config.name_prefix
        policy = removal_policy(env_config)

        self.platform_key = PlatformKey(self, "PlatformKey", alias=f"alias/{prefix}/platform", removal_policy=policy)
        self.key = self.platform_key.key
        self.access_logs = AccessLogBucket(self, "AccessLogs", removal_policy=policy).bucket
        self.artifacts = SecureBucket(
            self,
            "Artifacts",
            bucket_name=self.bucket_name("artifacts"),
            key=self.key,
            access_logs=self.access_logs,
            removal_policy=policy,
        )
        self.data = SecureBucket(
            self,
            "Data",
            bucket_name=self.bucket_name("data"),
            key=self.key,
            access_logs=self.access_logs,
            removal_policy=policy,
            event_bridge_enabled=True,
        )
        self.network = PlatformNetwork(self, "Network", config=env_config.network, key=self.key, removal_policy=policy)
        self.budget: EnvironmentBudget | None = None
        if env_config.cost.monthly_budget:
            self.budget = EnvironmentBudget(
                self, "Budget", budget_name=f"{prefix}-monthly", environment=env_config.name,
                monthly_amount=env_config.cost.monthly_budget, emails=env_config.cost.budget_emails,
            )

        CfnOutput(self, "PlatformKeyArn", value=self.key.key_arn)
        CfnOutput(self, "ArtifactsBucketName", value=self.artifacts.bucket.bucket_name)
        CfnOutput(self, "DataBucketName", value=self.data.bucket.bucket_name)

    @property
    def availability_zones(self) -> list[str]:
        # Fn::GetAZs instead of a context lookup: synth needs no credentials even when the
        # environment pins an account and region, and max_azs above 2 still works.
        return [Fn.select(i, Fn.get_azs()) for i in range(self.env_config.network.max_azs)]

    def bucket_name(self, purpose: str) -> str:
        """``<prefix>-<purpose>-<account>-<region>``: globally unique and derivable anywhere."""
        return f"{self.env_config.name_prefix}-{purpose}-{Aws.ACCOUNT_ID}-{Aws.REGION}"
