"""FoundationStack: the security baseline every other stack of an environment builds on."""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Fn, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from llmops.config import EnvironmentConfig
from llmops.constructs.core import AccessLogBucket, DeadLetterQueue, PlatformKey, PlatformNetwork, SecureBucket
from llmops.constructs.cost import EnvironmentBudget

RAW_PREFIX = "raw/"
# What no platform role may do to raw/ (delete, overwrite, or loosen a lock): uploads stay evidence.
RAW_PROTECTED_ACTIONS = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutObject",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:BypassGovernanceRetention",
)

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
    - ``alarm_topic``: the CMK-encrypted topic every alarm of the environment notifies, with the
      ``alerts`` e-mail subscriptions; ``alarm_action(*alarms)`` wires an alarm to it (and to
      ``alerts.topic_arn`` when set).
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
        prep = env_config.data_prep
        self.data = SecureBucket(
            self,
            "Data",
            bucket_name=self.bucket_name("data"),
            key=self.key,
            access_logs=self.access_logs,
            removal_policy=policy,
            event_bridge_enabled=True,
            # One rule for the bucket: a shorter rule would expire raw/ versions before their retention.
            noncurrent_version_days=max(90, prep.raw_retention_days),
            object_lock=(prep.object_lock.mode, prep.raw_retention_days) if prep.object_lock.enabled else None,
        )
        self._protect_raw()
        team = prep.workteam
        if env_config.capabilities.data_prep and team.enabled and team.notify_workers and not team.existing_workteam_arn:
            # Ground Truth publishes new-task notifications to the (CMK-encrypted) workteam topic.
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowSageMakerWorkteamNotifications",
                    principals=[iam.ServicePrincipal("sagemaker.amazonaws.com")],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],  # in a key policy "*" means this key
                    conditions={"StringEquals": {"aws:SourceAccount": self.account}},
                )
            )
        self.network = PlatformNetwork(self, "Network", config=env_config.network, key=self.key, removal_policy=policy)
        self._alerts()
        self.budget: EnvironmentBudget | None = None
        if env_config.cost.monthly_budget:
            self.budget = EnvironmentBudget(
                self, "Budget", budget_name=f"{prefix}-monthly", environment=env_config.name,
                monthly_amount=env_config.cost.monthly_budget, emails=env_config.cost.budget_emails,
            )

        CfnOutput(self, "PlatformKeyArn", value=self.key.key_arn)
        CfnOutput(self, "ArtifactsBucketName", value=self.artifacts.bucket.bucket_name)
        CfnOutput(self, "DataBucketName", value=self.data.bucket.bucket_name)

    def _protect_raw(self) -> None:
        """Deny every platform role (IAM roles tagged with this project) delete and overwrite under raw/.

        A bucket-policy Deny wins over any Allow a role has or gets later, so a new function
        cannot be granted its way around it. Principals are matched by the project tag that
        every resource of the stage carries (the tag walk test holds every role to it).
        """
        cfg = self.env_config
        self.data.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyPlatformRolesChangingRaw",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(RAW_PROTECTED_ACTIONS),
                resources=[self.data.arn_for_objects(RAW_PREFIX)],
                conditions={
                    "StringEquals": {"aws:PrincipalTag/project": cfg.project, "aws:PrincipalTag/environment": cfg.name}
                },
            )
        )

    def _alerts(self) -> None:
        alerts = self.env_config.alerts
        self.alarm_topic = sns.Topic(
            self, "AlarmTopic", master_key=self.key, enforce_ssl=True, display_name=f"{self.env_config.name_prefix} alarms"
        )
        # The topic policy CDK writes (SSL only) replaces SNS's default one: allow alarms explicitly.
        self.alarm_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.alarm_topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {"aws:SourceArn": f"arn:{self.partition}:cloudwatch:{self.region}:{self.account}:alarm:*"},
                },
            )
        )
        self.alarm_actions: list[cloudwatch.IAlarmAction] = [cw_actions.SnsAction(self.alarm_topic)]
        if alerts.topic_arn:
            existing = sns.Topic.from_topic_arn(self, "ExistingAlertTopic", alerts.topic_arn)
            self.alarm_actions.append(cw_actions.SnsAction(existing))
        # E-mails SNS could not deliver wait here (and raise their own alarm) instead of vanishing.
        self.alert_dead_letter_queue = DeadLetterQueue(
            self, "AlertDeliveryDeadLetterQueue", key=self.key, purpose="the alarm topic's e-mail subscriptions",
            alarm_actions=self.alarm_actions,
        )
        for n, address in enumerate(alerts.emails):
            self.alarm_topic.add_subscription(
                subscriptions.EmailSubscription(address, dead_letter_queue=self.alert_dead_letter_queue)
            )
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)

    def alarm_action(self, *alarms: cloudwatch.Alarm) -> None:
        """Make each alarm notify the environment's alerts (alarm topic, and the existing topic if any)."""
        for alarm in alarms:
            alarm.add_alarm_action(*self.alarm_actions)

    @property
    def availability_zones(self) -> list[str]:
        # Fn::GetAZs instead of a context lookup: synth needs no credentials even when the
        # environment pins an account and region, and max_azs above 2 still works.
        return [Fn.select(i, Fn.get_azs()) for i in range(self.env_config.network.max_azs)]

    def bucket_name(self, purpose: str) -> str:
        """``<prefix>-<purpose>-<account>-<region>``: globally unique and derivable anywhere."""
        return f"{self.env_config.name_prefix}-{purpose}-{Aws.ACCOUNT_ID}-{Aws.REGION}"
