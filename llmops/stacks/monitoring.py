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
from typing import Any

import jsii
from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from llmops.config import EnvironmentConfig
from llmops.constructs.core import DeadLetterQueue, PlatformFunction, retention_days
from llmops.constructs.core.lambda_bundle import LambdaBundle
from llmops.nag import acknowledge_wildcard_resource
from llmops.stacks.foundation import FoundationStack, removal_policy
from pipelines import profiles

NAMESPACE = "LLMOps/Monitoring"
METRICS_PREFIX = "monitoring/metrics/"  # per-record metrics, JSON lines, partitioned by dt=YYYY-MM-DD
BASELINES_PREFIX = "monitoring/baselines/"  # <use case>/v<N>.json, written by `llmops monitor baseline` or a person
QUARANTINE_PREFIX = "quarantine/monitoring/"  # malformed capture lines / undecodable log items, with the reason
CAPTURE_PREFIX = "capture/"  # SageMaker data capture: capture/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl
# The review form's problem labels (lambdas/runtime/human_review/model.py PROBLEMS; a test keeps them equal).
REVIEW_PROBLEMS = ("unsupported_claim", "wrong_citation", "harmful_content", "unhelpful_refusal", "off_topic")
SCORER_TIMEOUT_S = 300
SCORER_MEMORY_MB = 1024  # scikit-learn + scipy import (~250 MB resident) plus a capture file's records
# The metrics table's columns: what the scorer writes per record (lambdas/runtime/monitoring/batch.py).
METRICS_TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("interaction_id", "string"), ("source", "string"), ("use_case", "string"), ("endpoint", "string"),
    ("variant", "string"), ("experiment", "string"), ("arm", "string"), ("embedding_model", "string"),
    ("prompt_id", "string"), ("prompt_version", "int"), ("model", "string"), ("recorded_at", "string"),
    ("latency_ms", "double"),
    *((m, "double") for m in ("relevance", "hallucination", "toxicity", "prompt_toxicity", "sentiment", "readability",
                              "repetition", "distinct_2", "refusal", "jailbreak", "injection", "top_score", "score_gap",
                              "context_chars_mean", "embedding_latency_ms", "retrieval_latency_ms")),
    ("prompt_tokens", "int"), ("response_tokens", "int"), ("prompt_chars", "int"), ("response_chars", "int"),
    ("context_count", "int"),
)


@jsii.implements(lambda_.IEventSourceDlq)
class _ExactSqsDlq:
    """A stream mapping's on-failure queue with exact grants (``sources.SqsDlq`` adds kms:ReEncrypt*/GenerateDataKey*)."""

    def __init__(self, queue: sqs.IQueue, key_arn: str) -> None:
        self.queue, self.key_arn = queue, key_arn

    def bind(self, _target: Any, target_handler: lambda_.IFunction) -> lambda_.DlqDestinationConfig:
        target_handler.add_to_role_policy(iam.PolicyStatement(
            sid="StreamFailuresToDeadLetterQueue", actions=["sqs:SendMessage"], resources=[self.queue.queue_arn]))
        target_handler.add_to_role_policy(iam.PolicyStatement(
            sid="EncryptStreamFailures", actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key_arn]))
        return lambda_.DlqDestinationConfig(destination=self.queue.queue_arn)


def drift_metric(use_case: str, metric: str, statistic: str) -> cloudwatch.Metric:
    """``Drift`` of one metric of one use case: ``Rule`` (the verdict), ``PSI``, ``KS`` (the statistic) or ``KSPValue``."""
    return cloudwatch.Metric(namespace=NAMESPACE, metric_name="Drift", statistic="Maximum" if statistic != "KSPValue" else "Minimum",
                             period=Duration.hours(1),
                             dimensions_map={"UseCase": use_case, "Metric": metric, "Statistic": statistic})


class MonitoringStack(Stack):
    def __init__(self, scope: Construct, id: str, *, foundation: FoundationStack, env_config: EnvironmentConfig,
                 inference: Any = None, rag: Any = None, human_review: Any = None, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        cfg = env_config
        mon = cfg.monitoring
        prefix = cfg.name_prefix
        self.alarm_prefix = f"{prefix}-drift-"
        use_cases = list(cfg.fine_tuning.use_cases) if cfg.capabilities.fine_tuning else []

        # --- drift alarms -------------------------------------------------------------------------
        # One rule (config monitoring.drift; the CLI uses it too): PSI >= psi_threshold, or KS p < ks_pvalue
        # with statistic >= ks_threshold. The scorer applies it (DriftRule, thresholds from this config)
        # and publishes its verdict as Statistic=Rule (1 drift, 0 not) beside PSI, KS and KSPValue; the
        # alarm reads the verdict: one alarm metric ($0.10/month) where metric math over three costs three.
        self.drift_alarms: list[cloudwatch.Alarm] = []
        for use_case in use_cases:
            for metric in mon.drift.metrics:
                alarm = cloudwatch.Alarm(
                    self, f"Drift-{use_case}-{metric}", alarm_name=f"{self.alarm_prefix}{use_case}-{metric}",
                    metric=drift_metric(use_case, metric, "Rule"),
                    alarm_description=(f"{metric} of {use_case} drifted from its baseline (PSI >= {mon.drift.psi_threshold}, "
                                       f"or KS >= {mon.drift.ks_threshold} with p < {mon.drift.ks_pvalue})"),
                    threshold=1, evaluation_periods=mon.drift.evaluation_periods,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,  # no traffic is no drift
                )
                foundation.alarm_action(alarm)
                self.drift_alarms.append(alarm)

        # --- metrics table (Athena) ---------------------------------------------------------------
        database_name = prefix.replace("-", "_") + "_monitoring"
        self.database = glue.CfnDatabase(self, "Database", catalog_id=self.account,
                                         database_input=glue.CfnDatabase.DatabaseInputProperty(name=database_name))
        columns = [glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in METRICS_TABLE_COLUMNS]
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

        # --- capture / interaction log -> scorer -------------------------------------------------
        self.score_function = None
        llm = getattr(inference, "llm", None)
        self.capture_endpoint = llm.endpoint_name if llm is not None and cfg.inference.data_capture_percent > 0 else None
        interactions = getattr(rag, "interactions", None)
        if self.capture_endpoint or interactions is not None:
            self._scorer(foundation, cfg, use_cases, rag, interactions, human_review)
        self.dashboard = self._dashboard(cfg, use_cases, inference, rag, human_review)

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

    # -- the scorer --------------------------------------------------------------------------------

    def use_case_map(self, cfg: EnvironmentConfig, use_cases: list[str]) -> dict[str, Any]:
        """Endpoint -> variant -> use case (a variant serving a use case's package), default the first use case."""
        default = use_cases[0] if use_cases else None
        endpoints: dict[str, dict[str, str]] = {}
        if self.capture_endpoint:
            variants = {v.name: v.model.use_case for v in cfg.llm_variants() if v.model.use_case}
            endpoints[self.capture_endpoint] = dict(sorted(variants.items()))
        return {"default": default, "endpoints": endpoints}

    def _scorer(self, foundation: FoundationStack, cfg: EnvironmentConfig, use_cases: list[str], rag: Any,
                interactions: Any, human_review: Any) -> None:
        key, data, drift = foundation.key, foundation.data, cfg.monitoring.drift
        log_retention = retention_days(cfg.log_retention_days)
        self.score_dead_letter_queue = DeadLetterQueue(
            self, "ScoreDeadLetterQueue", key=key, alarm_actions=foundation.alarm_actions,
            purpose="capture events and interaction-log batches the monitoring scorer could not process")
        environment = {
            "DATA_BUCKET": data.bucket_name,
            "USE_CASES": json.dumps(self.use_case_map(cfg, use_cases), sort_keys=True),
            "DRIFT_METRICS": json.dumps(list(drift.metrics)),
            "DRIFT_PSI_THRESHOLD": str(drift.psi_threshold), "DRIFT_KS_THRESHOLD": str(drift.ks_threshold),
            "DRIFT_KS_PVALUE": str(drift.ks_pvalue),
        }
        # The model metrics (relevance, hallucination, repeatability) embed with the index's own model, on
        # the platform's endpoint or Bedrock: no torch in the bundle, and the same model the baselines use.
        embeds = rag is not None and cfg.vector_store.backend != "kendra" and bool(getattr(rag, "embedding_environment", None))
        if embeds:
            environment.update(rag.embedding_environment)
        if human_review is not None:
            environment["REVIEW_QUEUE_URL"] = human_review.review_queue.queue_url
            environment["REVIEW_ROUTING"] = json.dumps(cfg.human_review.routing.model_dump(mode="json"), sort_keys=True)
        fn = PlatformFunction(
            self, "ScoreFunction", entry="monitoring_score", key=key, network=foundation.network,
            bundle=LambdaBundle(entry="monitoring_score", runtime_packages=("monitoring", "human_review", "rag"),
                                prune_tests=True),
            invoked_by="its SQS and DynamoDB-stream event-source mappings (failures: the capture queue's redrive DLQ "
                       "and the stream's on-failure destination, both the scorer DLQ)",
            description="Monitoring: data capture and the interaction log -> metrics table, CloudWatch, drift, review routing",
            environment=environment, memory_size=SCORER_MEMORY_MB, timeout=Duration.seconds(SCORER_TIMEOUT_S),
            log_retention=log_retention,
        )
        self.score_function = fn
        data.grant_read(fn.role, BASELINES_PREFIX)
        data.grant_write(fn.role, METRICS_PREFIX)
        data.grant_write(fn.role, QUARANTINE_PREFIX)
        fn.role.add_to_principal_policy(iam.PolicyStatement(
            sid="PublishMonitoringMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": NAMESPACE}}))
        acknowledge_wildcard_resource(fn.role.node.find_child("DefaultPolicy"), "*",
                                      "cloudwatch:PutMetricData has no resource type; the namespace condition scopes it.")
        if human_review is not None:
            human_review.grant_route(fn.role)
        if embeds:
            rag.grant_embed(fn)
            for source in ("rag", "capture"):
                foundation.alarm_action(cloudwatch.Alarm(
                    self, f"ModelMetricsSkipped-{source}",
                    metric=cloudwatch.Metric(namespace=NAMESPACE, metric_name="ModelMetricsSkipped", statistic="Sum",
                                             period=Duration.hours(1), dimensions_map={"Source": source}),
                    threshold=1, evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    alarm_description=f"The embedding model failed: {source} records were scored without relevance, "
                                      "hallucination and repeatability (their drift alarms see no data)",
                ))

        if self.capture_endpoint:
            prefix = f"{CAPTURE_PREFIX}{self.capture_endpoint}/"
            # Read on all of capture/ (this environment's endpoints only write there); the rule below
            # subscribes the LLM endpoint's prefix alone.
            data.grant_read(fn.role, CAPTURE_PREFIX)
            self.capture_queue = sqs.Queue(
                self, "CaptureQueue", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True,
                visibility_timeout=Duration.seconds(6 * SCORER_TIMEOUT_S), retention_period=Duration.days(4),
                dead_letter_queue=sqs.DeadLetterQueue(queue=self.score_dead_letter_queue, max_receive_count=3),
            )
            self.capture_rule = events.Rule(
                self, "CaptureObjects", description=f"Monitoring: data-capture files of {self.capture_endpoint}",
                event_pattern=events.EventPattern(
                    source=["aws.s3"], detail_type=["Object Created"],
                    detail={"bucket": {"name": [data.bucket_name]}, "object": {"key": [{"prefix": prefix}]}},
                ),
            )
            self.capture_rule.add_target(targets.SqsQueue(
                self.capture_queue, dead_letter_queue=self.score_dead_letter_queue, retry_attempts=8,
                max_event_age=Duration.hours(24)))
            fn.function.add_event_source(sources.SqsEventSource(
                self.capture_queue, batch_size=5, max_batching_window=Duration.seconds(30), report_batch_item_failures=True))

        if interactions is not None:
            # The mapping grants stream reads (DescribeStream/GetRecords/GetShardIterator/ListStreams, kms:Decrypt);
            # the scorer reads nothing else of the table (the stream image carries the record).
            fn.function.add_event_source(sources.DynamoEventSource(
                interactions, starting_position=lambda_.StartingPosition.TRIM_HORIZON, batch_size=200,
                max_batching_window=Duration.seconds(60), bisect_batch_on_error=True, retry_attempts=5,
                max_record_age=Duration.hours(24), report_batch_item_failures=True,
                on_failure=_ExactSqsDlq(self.score_dead_letter_queue, key.key_arn),
                # Only what the scorer acts on: new interactions, and feedback turning negative (no TTL deletes).
                filters=[
                    lambda_.FilterCriteria.filter({"eventName": lambda_.FilterRule.is_equal("INSERT")}),
                    lambda_.FilterCriteria.filter({"eventName": lambda_.FilterRule.is_equal("MODIFY"),
                                                   "dynamodb": {"NewImage": {"feedback": {"M": {"rating": {
                                                       "S": lambda_.FilterRule.is_equal("down")}}}}}}),
                ],
            ))
        CfnOutput(self, "ScoreFunctionName", value=fn.function.function_name)

    # -- the environment dashboard ---------------------------------------------------------------

    def _dashboard(self, cfg: EnvironmentConfig, use_cases: list[str], inference: Any, rag: Any,
                   human_review: Any) -> cloudwatch.Dashboard:
        """``<prefix>-environment``: serving, the LLM/RAG metrics, drift and human review on one page."""
        rows: list[list[cloudwatch.IWidget]] = []
        hour, five = Duration.hours(1), Duration.minutes(5)

        def search(namespace_dims: str, metric: str, stat: str, period: Duration, label: str) -> cloudwatch.MathExpression:
            # SEARCH: the series exist per prompt version / model / service, known only at run time.
            return cloudwatch.MathExpression(
                expression=f"SEARCH('{{{namespace_dims}}} MetricName=\"{metric}\"', '{stat}', {int(period.to_seconds())})",
                label=label, period=period)

        endpoints = [e for e in (getattr(inference, "llm", None), getattr(inference, "embeddings", None)) if e is not None]
        if endpoints:
            rows.append([cloudwatch.TextWidget(markdown=f"# {cfg.name}: endpoints", width=24, height=1)])
            rows.append([
                cloudwatch.GraphWidget(title="Endpoint latency p50/p90 (µs)", width=6, left=[
                    m for e in endpoints for m in (e.metric_latency(statistic="p50"), e.metric_latency())]),
                cloudwatch.GraphWidget(title="Throughput (invocations)", width=6,
                                       left=[e.metric_invocations() for e in endpoints]),
                cloudwatch.GraphWidget(title="Errors (5xx)", width=6, left=[e.metric_errors() for e in endpoints]),
                cloudwatch.GraphWidget(title="GPU utilisation / GPU memory (%)", width=6, left=[
                    cloudwatch.Metric(namespace="/aws/sagemaker/Endpoints", metric_name=name, statistic="Average",
                                      period=five, dimensions_map={"EndpointName": e.endpoint_name,
                                                                   "VariantName": e.primary_variant})
                    for e in endpoints[:1] for name in ("GPUUtilization", "GPUMemoryUtilization")]),
            ])
            if getattr(inference, "alarms", None):
                rows.append([cloudwatch.AlarmStatusWidget(title="Inference alarms", alarms=inference.alarms, width=24)])
        rows.append([cloudwatch.TextWidget(markdown="# LLM and RAG metrics", width=24, height=1)])
        quality = "LLMOps,PromptId,PromptVersion,service"
        rows.append([
            cloudwatch.GraphWidget(title="Token counts (query path, per prompt version)", width=8, left=[
                search(quality, "PromptTokens", "Sum", five, "prompt tokens"),
                search(quality, "CompletionTokens", "Sum", five, "completion tokens")]),
            cloudwatch.GraphWidget(title="RAG latency (ms)", width=8, left=[
                search(quality, name, "p90", five, name) for name in ("EmbeddingLatency", "RetrievalLatency", "GenerationLatency")]),
            cloudwatch.GraphWidget(title="Top retrieval score", width=8, left=[search(quality, "TopScore", "Average", five, "top score")]),
        ])
        rows.append([
            cloudwatch.GraphWidget(title=f"Query path: Quality.{', Quality.'.join(group)}", width=8, left=[
                search(quality, f"Quality.{name}", "Average", five, name) for name in group])
            for group in (("refusal", "injection", "jailbreak"), ("readability",), ("sentiment", "repetition"))
        ])
        scored = "LLMOps/Monitoring,Source,UseCase"
        rows.append([
            cloudwatch.GraphWidget(title="Scorer: records scored / malformed / routed to review", width=8, left=[
                search(scored, "RecordsScored", "Sum", hour, "scored"),
                search("LLMOps/Monitoring,Source", "MalformedLines", "Sum", hour, "malformed"),
                search("LLMOps/Monitoring,Source", "RoutedToReview", "Sum", hour, "routed")]),
            cloudwatch.GraphWidget(title="Scorer: toxicity, refusal, injection (mean)", width=8, left=[
                search(scored, name, "Average", hour, name) for name in ("toxicity", "refusal", "injection", "jailbreak")]),
            cloudwatch.GraphWidget(title="Scorer: tokens p90", width=8, left=[
                search(scored, name, "p90", hour, name) for name in ("prompt_tokens", "response_tokens")]),
        ])
        rows.append([cloudwatch.TextWidget(markdown="# Drift against the versioned baselines", width=24, height=1)])
        drift_widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(title=f"Drift {use_case}: PSI per metric", width=8, left=[
                drift_metric(use_case, m, "PSI") for m in cfg.monitoring.drift.metrics],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=cfg.monitoring.drift.psi_threshold, label="PSI threshold")])
            for use_case in use_cases
        ] + [
            cloudwatch.GraphWidget(title=f"Drift {use_case}: KS statistic per metric", width=8, left=[
                drift_metric(use_case, m, "KS") for m in cfg.monitoring.drift.metrics],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=cfg.monitoring.drift.ks_threshold, label="KS threshold")])
            for use_case in use_cases
        ]
        if self.drift_alarms:
            drift_widgets.append(cloudwatch.AlarmStatusWidget(title="Drift alarms", alarms=self.drift_alarms, width=8))
        rows.append(drift_widgets or [cloudwatch.TextWidget(markdown="No use cases: no drift metrics.", width=24, height=2)])
        if human_review is not None:
            review = "LLMOps,Model,PromptVersion,service"
            rows.append([cloudwatch.TextWidget(markdown="# Human review", width=24, height=1)])
            rows.append([
                cloudwatch.GraphWidget(title="Mean rating (1-5) per prompt version and model", width=8,
                                       left=[search(review, "MeanRating", "Average", hour, "mean rating")]),
                cloudwatch.GraphWidget(title="Problem rates", width=8, left=[
                    search(review, f"ProblemRate.{p}", "Average", hour, p) for p in REVIEW_PROBLEMS]),
                cloudwatch.GraphWidget(title="Reviews and loops", width=8, left=[
                    search(review, "ReviewCount", "Sum", hour, "reviews"),
                    search("LLMOps,service", "HumanLoopsStarted", "Sum", hour, "loops started")]),
            ])
        return cloudwatch.Dashboard(self, "EnvironmentDashboard", dashboard_name=f"{cfg.name_prefix}-environment",
                                    widgets=rows)
