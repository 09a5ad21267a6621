"""MonitoringStack: drift alarms per use case and metric, and the retraining loop they feed.

The scorers (the query function's EMF metrics, the batch scorer over captured traffic) publish
``Drift`` metrics in ``LLMOps/Monitoring`` with the dimensions ``UseCase``, ``Metric`` and
``Statistic`` (``PSI`` or ``KS``) against the use case's versioned baseline. An alarm per use case
and metric (``<prefix>-drift-<use case>-<metric>``) notifies the alerts and, through EventBridge,
the retraining function: throttled per use case by one conditional write, held for approval when
config says so, every decision recorded in the decisions table.
"""

from __future__ import annotations

import json

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from constructs import Construct

from llmops.config import EnvironmentConfig
from llmops.constructs.core import DeadLetterQueue, PlatformFunction, retention_days
from llmops.stacks.foundation import FoundationStack, removal_policy
from pipelines import profiles

NAMESPACE = "LLMOps/Monitoring"
METRICS_PREFIX = "monitoring/metrics/"  # per-record metrics, JSON lines, partitioned by dt=YYYY-MM-DD


class MonitoringStack(Stack):
    def __init__(self, scope: Construct, id: str, *, foundation: FoundationStack, env_config: EnvironmentConfig,
                 **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        cfg = env_config
        mon = cfg.monitoring
        prefix = cfg.name_prefix
        self.alarm_prefix = f"{prefix}-drift-"
        use_cases = list(cfg.fine_tuning.use_cases) if cfg.capabilities.fine_tuning else []

        # --- drift alarms -------------------------------------------------------------------------
        self.drift_alarms: list[cloudwatch.Alarm] = []
        for use_case in use_cases:
            for metric in mon.drift.metrics:
                psi = cloudwatch.Metric(namespace=NAMESPACE, metric_name="Drift", statistic="Maximum",
                                        period=Duration.hours(1),
                                        dimensions_map={"UseCase": use_case, "Metric": metric, "Statistic": "PSI"})
                alarm = psi.create_alarm(
                    self, f"Drift-{use_case}-{metric}", alarm_name=f"{self.alarm_prefix}{use_case}-{metric}",
                    alarm_description=f"{metric} of {use_case} drifted from its baseline (PSI > {mon.drift.psi_threshold})",
                    threshold=mon.drift.psi_threshold, evaluation_periods=mon.drift.evaluation_periods,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,  # no traffic is no drift
                )
                foundation.alarm_action(alarm)
                self.drift_alarms.append(alarm)

        # --- metrics table (Athena) ---------------------------------------------------------------
        database_name = prefix.replace("-", "_") + "_monitoring"
        self.database = glue.CfnDatabase(self, "Database", catalog_id=self.account,
                                         database_input=glue.CfnDatabase.DatabaseInputProperty(name=database_name))
        columns = [glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in (
            ("interaction_id", "string"), ("source", "string"), ("use_case", "string"), ("prompt_id", "string"),
            ("prompt_version", "int"), ("model", "string"), ("recorded_at", "string"),
            *((m, "double") for m in ("relevance", "hallucination", "toxicity", "sentiment", "readability", "repetition",
                                      "refusal", "jailbreak", "injection", "top_score")),
            ("prompt_tokens", "int"), ("response_tokens", "int"),
        )]
        self.metrics_table = glue.CfnTable(
            self, "MetricsTable", catalog_id=self.account, database_name=database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name="interaction_metrics", table_type="EXTERNAL_TABLE",
                parameters={"classification": "json", "projection.enabled": "true", "projection.dt.type": "date",
                            "projection.dt.format": "yyyy-MM-dd", "projection.dt.range": "2026-01-01,NOW",
                            "storage.location.template": f"s3://{foundation.data.bucket_name}/{METRICS_PREFIX}dt=${{dt}}/"},
                partition_keys=[glue.CfnTable.ColumnProperty(name="dt", type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=columns, location=f"s3://{foundation.data.bucket_name}/{METRICS_PREFIX}",
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library="org.openx.data.jsonserde.JsonSerDe"),
                ),
            ),
        )
        self.metrics_table.add_dependency(self.database)

        # --- retraining loop ----------------------------------------------------------------------
        self.retraining_function = None
        if mon.retraining.enabled and use_cases:
            self._retraining(foundation, cfg, use_cases)

    def _retraining(self, foundation: FoundationStack, cfg: EnvironmentConfig, use_cases: list[str]) -> None:
        key = foundation.key
        self.decisions = dynamodb.Table(
            self, "Decisions", table_name=f"{cfg.name_prefix}-retraining-decisions",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST, encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            removal_policy=removal_policy(cfg) if removal_policy(cfg) != RemovalPolicy.SNAPSHOT else RemovalPolicy.RETAIN,
        )
        pipelines = {u: profiles.pipeline_name(cfg, u) for u in use_cases}
        self.retraining_dead_letter_queue = DeadLetterQueue(
            self, "RetrainingDeadLetterQueue", key=key, purpose="drift alarm events the retraining function could not handle",
            alarm_actions=foundation.alarm_actions)
        fn = PlatformFunction(
            self, "RetrainingFunction", entry="monitoring_retraining", runtime_packages=["monitoring"], key=key,
            network=foundation.network, description="Monitoring: drift alarm -> throttled, approved, recorded retraining",
            dead_letter_queue=self.retraining_dead_letter_queue,  # EventBridge invokes it asynchronously
            log_retention=retention_days(cfg.log_retention_days),
            environment={
                "DECISIONS_TABLE": self.decisions.table_name, "PIPELINES": json.dumps(pipelines, sort_keys=True),
                "ALARM_PREFIX": self.alarm_prefix, "COOLDOWN_HOURS": str(cfg.monitoring.retraining.cooldown_hours),
                "REQUIRE_APPROVAL": "true" if cfg.monitoring.retraining.require_approval else "false",
                "TOPIC_ARN": foundation.alarm_topic.topic_arn, "PLATFORM_ENVIRONMENT_NAME": cfg.name,
            },
        )
        self.retraining_function = fn
        fn.role.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:UpdateItem", "dynamodb:PutItem"], resources=[self.decisions.table_arn]))
        fn.role.add_to_policy(iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key.key_arn]))
        fn.role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:StartPipelineExecution"],
            resources=[self.format_arn(service="sagemaker", resource="pipeline", resource_name=p) for p in pipelines.values()]))
        fn.role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[foundation.alarm_topic.topic_arn]))
        self.retraining_rule = events.Rule(
            self, "DriftAlarms", description="Monitoring: drift alarms entering ALARM ask for retraining",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"], detail_type=["CloudWatch Alarm State Change"],
                detail={"alarmName": [{"prefix": self.alarm_prefix}], "state": {"value": ["ALARM"]}},
            ),
        )
        self.retraining_rule.add_target(targets.LambdaFunction(
            fn.function, dead_letter_queue=self.retraining_dead_letter_queue, retry_attempts=3, max_event_age=Duration.hours(2)))
        CfnOutput(self, "DecisionsTable", value=self.decisions.table_name)
