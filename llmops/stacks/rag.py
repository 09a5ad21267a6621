"""RagStack: retrieval-augmented generation over the environment's documents.

- Vector store: the backend ``vector_store.backend`` selects (``llmops.constructs.rag.vector_store``).
- Ingestion: EventBridge rules on the foundation data bucket (``uploads/`` and ``curated/``,
  created and deleted) -> SQS (CMK, DLQ after 3 receives) -> ``rag_ingest`` with partial-batch
  failure reporting. Kendra fills itself from its S3 data source, so it has no ingestion queue.
- Query: API Gateway REST ``POST /query`` and ``POST /feedback`` (IAM authorisation on every method,
  request models, throttling, CMK-encrypted access logs) -> ``rag_query`` (one function, two routes).
- Grants are least privilege: InvokeEndpoint on the named SageMaker endpoints, InvokeModel on
  the named Bedrock models, data-bucket reads on the two prefixes, writes to ``quarantine/``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from llmops.config import ConfigError, EnvironmentConfig, ExperimentConfig, current_embedding_model, embedding_arm_source
from llmops.constructs.core.scanner import scanner_exception
from llmops.constructs.core import DeadLetterQueue, PlatformFunction, api_alarms, retention_days
from llmops.constructs.rag import VectorStore, vector_store_for
from llmops.nag import acknowledge
from llmops.stacks.foundation import FoundationStack, removal_policy

# Keep in step with lambdas/runtime/rag/feedback.py (a test compares the request model with it).
FEEDBACK_RATINGS = ("up", "down")
FEEDBACK_MAX_COMMENT_CHARS = 2000
FEEDBACK_MAX_ID_CHARS = 200
FEEDBACK_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
INGEST_PREFIXES = ("uploads/", "curated/")
# The runtime packages each function bundles (what its handler imports); benchmarks build the same.
QUERY_PACKAGES = ("rag", "prompt_catalog", "monitoring", "human_review", "experiments")
INGEST_PACKAGES = ("rag", "experiments")
QUARANTINE_PREFIX = "quarantine/"
INGEST_MAX_CONCURRENCY = 5
# API Gateway REST ends an integration at 29 s: the function stops first, so the caller gets its
# answer or its 503, never a gateway timeout. The database connect wait fits inside with room for
# a cold start (~3 s) and the secret read (docs/rag.md, "Timeouts").
API_INTEGRATION_LIMIT_S = 29
QUERY_TIMEOUT_S = 28
QUERY_DB_CONNECT_TIMEOUT_S = 20
# Ingest sizing from measured figures (docs/benchmarks.md, "RAG ingest sizing"): a 50 MB text
# document is ~55k chunks, ~80 s to load and chunk, ~320 MB peak plus ~230 MB of float32 vectors
# at 1024 dimensions; 2 GB holds that with room for the runtime and a PDF parser. A batch is as many
# worst-case documents as fit the 15-minute limit at the embedding rates stated there.
INGEST_MEMORY_MB = 2048
INGEST_TIMEOUT_S = 900
INGEST_BATCH_SIZE = {"sagemaker": 3, "bedrock": 1}  # Bedrock Titan embeds one text per call
# Output dimensions of the Bedrock embedding models whose sizes are fixed or a known set.
BEDROCK_EMBEDDING_DIMENSIONS = {
    "amazon.titan-embed-text-v2:0": (256, 512, 1024),
    "amazon.titan-embed-text-v1": (1536,),
    "cohere.embed-english-v3": (1024,),
    "cohere.embed-multilingual-v3": (1024,),
}
_INFERENCE_PROFILE = re.compile(r"^(us|eu|apac|us-gov|global)\.")


def check_rag_config(cfg: EnvironmentConfig) -> None:
    """Cross-field checks synth would otherwise turn into runtime failures."""
    rag, where = cfg.rag, f"environments.{cfg.name}"
    if rag.embedding_provider == "bedrock":
        allowed = BEDROCK_EMBEDDING_DIMENSIONS.get(rag.embedding_model_id)
        if allowed and cfg.vector_store.dimension not in allowed:
            raise ConfigError(
                f"{where}.vector_store.dimension: {rag.embedding_model_id} returns {'/'.join(map(str, allowed))} "
                f"dimensions, got {cfg.vector_store.dimension}; allowed: {', '.join(map(str, allowed))}"
            )
    # No kms: S3, SQS and Secrets Manager call KMS for SSE themselves; the functions never call it.
    needed: set[str] = set()
    providers = {rag.embedding_provider, rag.llm_provider}
    for exp in cfg.experiments.values():  # embedding A/B arms call Bedrock or their own SageMaker endpoint
        if exp.kind == "embedding-ab":
            providers |= {embedding_arm_source(a.model) for a in exp.arms[1:] if exp.winner in (None, a.name)}
    for provider in providers:
        needed.add("bedrock_runtime" if provider == "bedrock" else "sagemaker_runtime")
    if cfg.vector_store.backend == "aurora-pgvector":
        needed.add("secrets_manager")
    if cfg.vector_store.backend == "kendra":
        needed.add("kendra")  # Retrieve from the query function; Kendra fills itself, so no ingest queue
    else:
        needed.add("sqs")  # the ingest function dead-letters quarantined documents
    missing = sorted(needed - set(cfg.network.interface_endpoints))
    # Kendra needs no VPC resource: with functions_in_vpc "when-needed" the RAG functions run outside it.
    outside_vpc = cfg.vector_store.backend == "kendra" and cfg.network.functions_in_vpc == "when-needed"
    if missing and not cfg.network.existing_vpc_id and not outside_vpc:
        raise ConfigError(
            f"{where}.network.interface_endpoints: the RAG functions in the isolated subnets need "
            f"{', '.join(missing)}; add them to the list"
        )


class RagStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        foundation: FoundationStack,
        env_config: EnvironmentConfig,
        prompt_catalog: Any = None,
        inference: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        cfg, rag = env_config, env_config.rag
        check_rag_config(cfg)
        self.env_config = cfg
        key, network, data = foundation.key, foundation.network, foundation.data
        self.env_config_key_arn = key.key_arn
        log_retention = retention_days(cfg.log_retention_days)
        prefix = cfg.name_prefix

        # The store's functions reach the collection (VPC endpoint) or cluster from the isolated subnets.
        self.needs_vpc = cfg.vector_store.backend != "kendra"
        self.store: VectorStore = vector_store_for(
            self, "VectorStore", env_config=cfg, key=key, network=network,
            removal_policy=removal_policy(cfg, supports_snapshot=cfg.vector_store.backend == "aurora-pgvector"),
            data_bucket=data,
        )
        # The inference stack's endpoints, unless config names existing ones (or picks Bedrock).
        self.llm_construct = (getattr(inference, "llm", None)
                              if rag.llm_provider == "sagemaker" and not rag.llm_endpoint_name else None)
        self.embedding_construct = (getattr(inference, "embeddings", None)
                                    if rag.embedding_provider == "sagemaker" and not rag.embedding_endpoint_name else None)
        if self.llm_construct or self.embedding_construct:
            self.add_stack_dependency(inference)  # the endpoints exist before the functions call them
        self.embedding_endpoint = (self.embedding_construct.endpoint_name if self.embedding_construct
                                   else rag.embedding_endpoint_name or f"{prefix}-embeddings")
        self.llm_endpoint = self.llm_construct.endpoint_name if self.llm_construct else rag.llm_endpoint_name or f"{prefix}-llm"
        llm_container = inference.rag_container if self.llm_construct else rag.llm_container
        common_env = {
            **self.store.connection_environment(),
            "EMBEDDING_PROVIDER": rag.embedding_provider,
            "EMBEDDING_ENDPOINT_NAME": self.embedding_endpoint if rag.embedding_provider == "sagemaker" else "",
            "EMBEDDING_MODEL_ID": rag.embedding_model_id if rag.embedding_provider == "bedrock" else "",
            "EMBEDDING_MODEL_NAME": (current_embedding_model(cfg) or "") if rag.embedding_provider == "sagemaker" else "",
            "EMBEDDING_DIMENSION": str(cfg.vector_store.dimension),
            "DATA_BUCKET": data.bucket_name,
        }
        # Embedding A/B: an index (and an embedding endpoint or Bedrock model) per arm; a promoted
        # winner other than the control becomes the functions' only index and model.
        self.embedding_arms_env: dict[str, dict[str, str]] = {}
        self.embedding_experiment = self._embedding_arms(inference)
        if self.embedding_experiment and self.embedding_experiment[1].winner in self.embedding_arms_env:
            common_env.update(self.embedding_arms_env[self.embedding_experiment[1].winner])
        common_env = {k: v for k, v in common_env.items() if v != ""}
        # The model the index is embedded with: the monitoring scorer embeds answers with it too.
        self.embedding_environment = {k: v for k, v in common_env.items()
                                      if k.startswith("EMBEDDING_") and k != "EMBEDDING_ARMS"}

        # -- ingestion -----------------------------------------------------------------------
        self.ingest_function: PlatformFunction | None = None
        self.queue: sqs.Queue | None = None
        self.dead_letter_queue: sqs.Queue | None = None
        if cfg.vector_store.backend != "kendra":
            self._ingestion(foundation, common_env, log_retention)

        # -- query ---------------------------------------------------------------------------
        query_env = {
            **common_env,
            "LLM_PROVIDER": rag.llm_provider,
            "LLM_CONTAINER": llm_container,
            "TOP_K": str(rag.top_k),
            "MAX_QUESTION_CHARS": str(rag.max_question_chars),
            "PROMPT_ID": rag.prompt_id,
            "PROMPT_ALIAS": rag.prompt_alias,
        }
        if rag.llm_provider == "sagemaker":
            query_env["LLM_ENDPOINT_NAME"] = self.llm_endpoint
            component = getattr(self.llm_construct, "component_name", None)
            if component:  # scale-to-zero endpoints host an inference component; invocations must name it
                query_env["LLM_INFERENCE_COMPONENT"] = component
        else:
            query_env["LLM_MODEL_ID"] = rag.llm_model_id
        if cfg.vector_store.backend == "aurora-pgvector":
            # A resuming Aurora (~15 s) still connects; a longer wait ends as a 503 inside the API limit.
            query_env["PG_CONNECT_TIMEOUT"] = str(QUERY_DB_CONNECT_TIMEOUT_S)
        if prompt_catalog is not None:  # else the default template in code (prompt "rag-answer", version 0)
            query_env["PROMPT_TABLE_NAME"] = prompt_catalog.table_name
        experiments = self._experiments_environment(self.query_experiments())
        if experiments:
            query_env["EXPERIMENTS"] = experiments
        self.interactions = self._interaction_log(cfg, key)
        query_env["INTERACTIONS_TABLE"] = self.interactions.table_name
        query_env["INTERACTION_RETENTION_DAYS"] = str(rag.interaction_retention_days)
        if cfg.capabilities.human_review:
            # The query path flags answers for review from the metrics it computes anyway (docs/human_review.md).
            query_env["REVIEW_ROUTING"] = json.dumps(cfg.human_review.routing.model_dump(mode="json"), sort_keys=True,
                                                     separators=(",", ":"))
        self.query_function = PlatformFunction(
            self, "QueryFunction", invoked_by="the RAG query REST API (API Gateway proxy integration)", entry="rag_query", runtime_packages=list(QUERY_PACKAGES), key=key, network=network,
            needs_vpc=self.needs_vpc,
            description="RAG query: embed, retrieve, prompt, generate, cite", environment=query_env,
            memory_size=1024, timeout=Duration.seconds(QUERY_TIMEOUT_S), log_retention=log_retention,
        )
        self.store.grant_read(self.query_function)
        self._grant_embeddings(self.query_function)
        if self.llm_construct:
            self.llm_construct.grant_invoke(self.query_function.role)
        else:
            self._grant_model(self.query_function, rag.llm_provider, self.llm_endpoint, rag.llm_model_id, "Llm")
        if prompt_catalog is not None:
            prompt_catalog.grant_render(self.query_function.role)
        self.query_function.role.add_to_principal_policy(iam.PolicyStatement(
            sid="WriteInteractions", actions=["dynamodb:PutItem"], resources=[self.interactions.table_arn]))
        self.query_function.role.add_to_principal_policy(iam.PolicyStatement(
            sid="EncryptInteractions", actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn]))
        self._grant_feedback_writes(self.query_function, self.interactions.table_arn)
        self.api = self._api(key, log_retention)
        foundation.alarm_action(*api_alarms(self, "QueryApi", self.api, [self.query_function.function]))
        foundation.alarm_action(cloudwatch.Alarm(
            self, "InteractionLogFailures",
            metric=cloudwatch.Metric(namespace="LLMOps", metric_name="InteractionLogFailures", statistic="Sum",
                                     period=Duration.minutes(5), dimensions_map={"service": "rag_query"}),
            threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description="RAG answers were returned but not logged: monitoring, feedback and review miss them",
        ))

    # -- pieces ----------------------------------------------------------------------------------

    def _interaction_log(self, cfg: EnvironmentConfig, key: Any) -> dynamodb.Table:
        """One item per answer (lambdas/runtime/rag/interactions.py); its stream feeds the batch scorer."""
        return dynamodb.Table(
            self, "Interactions", table_name=f"{cfg.name_prefix}-interactions",
            partition_key=dynamodb.Attribute(name="interaction_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST, time_to_live_attribute="expires_at",
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED, encryption_key=key,
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            removal_policy=removal_policy(cfg) if removal_policy(cfg) != RemovalPolicy.SNAPSHOT else RemovalPolicy.RETAIN,
        )

    def grant_interactions_read(self, grantee: iam.IGrantable) -> None:
        """Read interaction items and the table's stream (the batch scorer, the judge, human review)."""
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:Query"], resources=[self.interactions.table_arn]))
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
            resources=[self.interactions.table_stream_arn]))
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["dynamodb:ListStreams"], resources=[f"{self.interactions.table_arn}/stream/*"]))
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:Decrypt"], resources=[self.env_config_key_arn]))

    def _ingestion(self, foundation: FoundationStack, common_env: dict[str, str], log_retention: logs.RetentionDays) -> None:
        cfg, key, data = self.env_config, foundation.key, foundation.data
        self.dead_letter_queue = DeadLetterQueue(
            self, "IngestDeadLetterQueue", key=key, purpose="the RAG ingestion queue and its EventBridge rule",
            alarm_actions=foundation.alarm_actions,
        )
        ingest_timeout = Duration.seconds(INGEST_TIMEOUT_S)
        self.queue = sqs.Queue(
            self, "IngestQueue", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True,
            visibility_timeout=Duration.seconds(6 * INGEST_TIMEOUT_S),  # six times the function timeout, as Lambda advises
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=3),
        )

        self.ingest_rule = events.Rule(
            self, "DocumentEvents", description="RAG: documents created or deleted under uploads/ and curated/",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created", "Object Deleted"],
                detail={"bucket": {"name": [data.bucket_name]},
                        "object": {"key": [{"prefix": p} for p in INGEST_PREFIXES]}},
            ),
        )
        self.ingest_rule.add_target(targets.SqsQueue(
            self.queue, dead_letter_queue=self.dead_letter_queue, retry_attempts=8, max_event_age=Duration.hours(24),
        ))

        rag = cfg.rag
        ingest_env = {
            **common_env,
            "CHUNK_SIZE": str(rag.chunk_size),
            "CHUNK_OVERLAP": str(rag.chunk_overlap),
            "QUARANTINE_PREFIX": QUARANTINE_PREFIX,
            "DLQ_URL": self.dead_letter_queue.queue_url,
        }
        # A running embedding A/B: ingestion writes every arm's index (the only experiment it needs).
        running = [e for e in self.query_experiments() if e[1].kind == "embedding-ab" and e[1].winner is None]
        indexes = 1
        if running:
            ingest_env["EXPERIMENTS"] = self._experiments_environment(running)
            indexes = len(running[0][1].arms)
        self.ingest_function = PlatformFunction(
            self, "IngestFunction", invoked_by="its SQS event-source mapping (failures return to the queue and its redrive DLQ)", entry="rag_ingest", runtime_packages=list(INGEST_PACKAGES), key=key, network=foundation.network,
            needs_vpc=self.needs_vpc,
            description="RAG ingestion: load, chunk, embed and upsert documents from S3 events",
            environment=ingest_env,
            memory_size=INGEST_MEMORY_MB, timeout=ingest_timeout, log_retention=log_retention,
        )
        fn = self.ingest_function
        fn.function.add_event_source(sources.SqsEventSource(
            # Each document is embedded once per index: a batch of worst-case documents still fits the timeout.
            self.queue, batch_size=max(1, INGEST_BATCH_SIZE.get(rag.embedding_provider, 1) // indexes),
            max_batching_window=Duration.seconds(5), report_batch_item_failures=True,
            max_concurrency=INGEST_MAX_CONCURRENCY,  # bounds the load on the embedding endpoint and the store
        ))
        for prefix in INGEST_PREFIXES:
            data.grant_read(fn.role, prefix)
        data.grant_write(fn.role, QUARANTINE_PREFIX)
        # Exact actions (grant_send_messages would add kms:ReEncrypt*/GenerateDataKey* wildcards).
        fn.role.add_to_principal_policy(iam.PolicyStatement(
            sid="QuarantineToDeadLetterQueue", actions=["sqs:SendMessage"], resources=[self.dead_letter_queue.queue_arn]))
        fn.role.add_to_principal_policy(iam.PolicyStatement(
            sid="EncryptDeadLetterMessages", actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn]))
        self.store.grant_write(fn)
        self._grant_embeddings(fn)

    def _grant_feedback_writes(self, fn: PlatformFunction, table_arn: str) -> None:
        """``POST /feedback``: UpdateItem of the ``feedback`` attribute only, and a read of the prompt it was for.

        ``dynamodb:Attributes`` is the set of top-level attribute names a request names (key included);
        ``ForAllValues`` limits it to these, and ``dynamodb:ReturnValues`` keeps the update from returning
        the rest of the item (ALL_OLD/ALL_NEW would read attributes the statement does not name).
        """
        fn.role.add_to_principal_policy(iam.PolicyStatement(
            sid="FeedbackOnInteractions", actions=["dynamodb:UpdateItem"], resources=[table_arn],
            conditions={"ForAllValues:StringEquals": {"dynamodb:Attributes": ["interaction_id", "feedback"]},
                        "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE", "UPDATED_OLD", "UPDATED_NEW"]}},
        ))
        fn.role.add_to_principal_policy(iam.PolicyStatement(
            sid="FeedbackPromptOfInteraction", actions=["dynamodb:GetItem"], resources=[table_arn],
            conditions={"ForAllValues:StringEquals": {"dynamodb:Attributes": ["interaction_id", "prompt_id", "prompt_version"]},
                        "StringEqualsIfExists": {"dynamodb:Select": ["SPECIFIC_ATTRIBUTES"]}},
        ))

    def grant_embed(self, fn: PlatformFunction) -> None:
        """Invoke the index's embedding model (``embedding_environment``), e.g. for the monitoring scorer."""
        if self.embedding_construct:
            self.embedding_construct.grant_invoke(fn.role)
        else:
            rag = self.env_config.rag
            self._grant_model(fn, rag.embedding_provider, self.embedding_endpoint, rag.embedding_model_id, "Embedding")

    def _grant_embeddings(self, fn: PlatformFunction) -> None:
        rag = self.env_config.rag
        promoted = self.embedding_experiment[1].winner if self.embedding_experiment else None
        if promoted not in self.embedding_arms_env:  # the control's model serves (alone, or beside the arms)
            if self.embedding_construct:
                self.embedding_construct.grant_invoke(fn.role)
            else:
                self._grant_model(fn, rag.embedding_provider, self.embedding_endpoint, rag.embedding_model_id, "Embedding")
        for arm, env in self.embedding_arms_env.items():
            if env["EMBEDDING_PROVIDER"] == "bedrock":
                self._grant_model(fn, "bedrock", "", env["EMBEDDING_MODEL_ID"], f"EmbeddingArm{arm.replace('-', '')}")
            else:
                self._arm_endpoints[arm].grant_invoke(fn.role)

    def _embedding_arms(self, inference: Any) -> tuple[str, ExperimentConfig] | None:
        """Make each serving embedding arm's index and note the variables that point a function at it and its model."""
        found = next(((n, e) for n, e in self.env_config.experiments.items() if e.kind == "embedding-ab"), None)
        self._arm_endpoints: dict[str, Any] = {}
        if found is None:
            return None
        name, exp = found
        serving = exp.arms[1:] if exp.winner is None else [a for a in exp.arms[1:] if a.name == exp.winner]
        for arm in serving:
            try:
                env = self.store.add_arm_index(arm.name, arm.dimension)
            except ValueError as exc:
                raise ConfigError(f"environments.{self.env_config.name}.experiments.{name}.arms.{arm.name}: {exc}") from None
            if embedding_arm_source(arm.model) == "bedrock":
                env.update(EMBEDDING_PROVIDER="bedrock", EMBEDDING_MODEL_ID=arm.model)
            else:
                endpoint = inference.embedding_arms[arm.name]
                self._arm_endpoints[arm.name] = endpoint
                env.update(EMBEDDING_PROVIDER="sagemaker", EMBEDDING_ENDPOINT_NAME=endpoint.endpoint_name,
                           EMBEDDING_MODEL_NAME=arm.model)
            self.embedding_arms_env[arm.name] = env
        if self._arm_endpoints and not (self.llm_construct or self.embedding_construct):
            self.add_stack_dependency(inference)
        return found

    def query_experiments(self) -> list[tuple[str, ExperimentConfig]]:
        """The experiments the query function takes part in: its model endpoint's, its prompt alias's, the embedding A/B."""
        cfg, rag = self.env_config, self.env_config.rag
        out = []
        for name, exp in cfg.experiments.items():
            if exp.kind in ("model-ab", "model-shadow"):
                if self.llm_construct is not None and exp.endpoint == cfg.inference.llm.name:
                    out.append((name, exp))
            elif exp.kind == "prompt-ab":
                if exp.prompt == rag.prompt_id and exp.alias == rag.prompt_alias:
                    out.append((name, exp))
            elif self.embedding_experiment is not None and name == self.embedding_experiment[0]:
                out.append((name, exp))
        return out

    def _experiments_environment(self, experiments: list[tuple[str, ExperimentConfig]]) -> str:
        """``EXPERIMENTS`` (lambdas/runtime/experiments/assignment.py reads it): compact JSON, within Lambda's 4 KB."""
        entries = []
        for name, exp in experiments:
            arms = []
            for arm in exp.arms:
                entry: dict[str, Any] = {"name": arm.name, "weight": arm.weight}
                if exp.kind in ("model-ab", "model-shadow"):
                    entry["variant"] = arm.variant
                    if arm.shadow:
                        entry["shadow"] = True
                elif exp.kind == "prompt-ab":
                    entry["version"] = arm.version
                else:
                    entry.update(model=arm.model, dimension=arm.dimension)
                    if exp.winner is None and arm.name in self.embedding_arms_env:
                        entry["environment"] = self.embedding_arms_env[arm.name]
                arms.append(entry)
            entries.append({"name": name, "kind": exp.kind, "winner": exp.winner, "arms": arms})
        if not entries:
            return ""
        text = json.dumps(entries, separators=(",", ":"), sort_keys=True)
        if len(text) > 2048:
            raise ConfigError(f"environments.{self.env_config.name}.experiments: {len(text)} characters of experiments "
                              "for the query function, over the 2,048 kept for them in Lambda's 4 KB environment; "
                              "fewer arms or shorter names")
        return text

    def _grant_model(self, fn: PlatformFunction, provider: str, endpoint: str, model_id: str, sid: str) -> None:
        if provider == "sagemaker":
            # SageMaker lower-cases endpoint names in ARNs.
            arn = self.format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint.lower())
            fn.role.add_to_principal_policy(iam.PolicyStatement(sid=f"Invoke{sid}Endpoint", actions=["sagemaker:InvokeEndpoint"], resources=[arn]))
            return
        if _INFERENCE_PROFILE.match(model_id):
            base = _INFERENCE_PROFILE.sub("", model_id)
            profile = self.format_arn(service="bedrock", resource="inference-profile", resource_name=model_id)
            models = f"arn:{self.partition}:bedrock:*::foundation-model/{base}"
            fn.role.add_to_principal_policy(iam.PolicyStatement(sid=f"Invoke{sid}Model", actions=["bedrock:InvokeModel"], resources=[profile, models]))
            acknowledge(fn.role.node.find_child("DefaultPolicy"), f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/{base}]",
                        f"A cross-region inference profile ({model_id}) routes to {base} in any of its regions.")
            return
        arn = f"arn:{self.partition}:bedrock:{self.region}::foundation-model/{model_id}"
        fn.role.add_to_principal_policy(iam.PolicyStatement(sid=f"Invoke{sid}Model", actions=["bedrock:InvokeModel"], resources=[arn]))

    def _api(self, key: Any, log_retention: logs.RetentionDays) -> apigw.RestApi:
        rag = self.env_config.rag
        access_logs = logs.LogGroup(self, "ApiAccessLogs", encryption_key=key, retention=log_retention)
        api = apigw.RestApi(
            self, "Api", rest_api_name=f"{self.env_config.name_prefix}-rag",
            description="RAG question answering (IAM-signed requests only)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=False,
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            deploy_options=apigw.StageOptions(
                stage_name="v1",
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=True),
                throttling_rate_limit=20, throttling_burst_limit=40,
                tracing_enabled=True,
            ),
        )
        scanner_exception(api.deployment_stage, "api-cache",
                          "Every request is a POST of a different question whose answer depends on the index at that "
                          "moment; a stage cache would only serve stale answers and costs per hour.")
        model = api.add_model(
            "QueryRequest", content_type="application/json", model_name="QueryRequest",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4, type=apigw.JsonSchemaType.OBJECT, required=["question"],
                additional_properties=False,
                properties={
                    "question": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1, max_length=rag.max_question_chars),
                    "top_k": apigw.JsonSchema(type=apigw.JsonSchemaType.INTEGER, minimum=1, maximum=50),
                    "filters": apigw.JsonSchema(type=apigw.JsonSchemaType.OBJECT),
                    # Sticky experiment arms per caller session or user (lambdas/runtime/rag/query.py checks it too).
                    "session_id": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1, max_length=256,
                                                   pattern="^[!-~]+$"),
                },
            ),
        )
        validator = api.add_request_validator("BodyValidator", validate_request_body=True, validate_request_parameters=True)
        self.query_method = api.root.add_resource("query").add_method(
            "POST", apigw.LambdaIntegration(self.query_function.function, proxy=True),
            authorization_type=apigw.AuthorizationType.IAM, request_validator=validator,
            request_models={"application/json": model},
        )
        feedback_model = api.add_model(
            "FeedbackRequest", content_type="application/json", model_name="FeedbackRequest",
            schema=apigw.JsonSchema(  # the same limits as lambdas/runtime/rag/feedback.py checks again
                schema=apigw.JsonSchemaVersion.DRAFT4, type=apigw.JsonSchemaType.OBJECT,
                required=["interaction_id", "rating"], additional_properties=False,
                properties={
                    "interaction_id": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1,
                                                       max_length=FEEDBACK_MAX_ID_CHARS, pattern=FEEDBACK_ID_PATTERN),
                    "rating": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, enum=list(FEEDBACK_RATINGS)),
                    "comment": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, max_length=FEEDBACK_MAX_COMMENT_CHARS),
                },
            ),
        )
        self.feedback_method = api.root.add_resource("feedback").add_method(
            "POST", apigw.LambdaIntegration(self.query_function.function, proxy=True),
            authorization_type=apigw.AuthorizationType.IAM, request_validator=validator,
            request_models={"application/json": feedback_model},
        )
        for finding, reason in (
            ("AwsSolutions-APIG3", "The API accepts only SigV4-signed IAM callers and is throttled per stage; "
                                   "a WAF web ACL is an account-level choice, attach one with WebAclAssociation if required."),
            ("AwsSolutions-APIG6", "Execution logging needs the account-wide API Gateway CloudWatch role, which the "
                                   "platform does not own; access logs of every request go to a CMK-encrypted group."),
            ("AwsSolutions-COG4", "Callers are IAM principals (SigV4), not Cognito users: authorization type is AWS_IAM."),
        ):
            acknowledge(api, finding, reason)
        # The pipeline's smoke test reads it (CDK Pipelines env_from_cfn_outputs).
        self.query_url_output = CfnOutput(self, "QueryUrl", value=api.url_for_path("/query"))
        CfnOutput(self, "FeedbackUrl", value=api.url_for_path("/feedback"))
        return api

    def grant_query(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let an IAM principal call ``POST /query``."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["execute-api:Invoke"],
            resource_arns=[self.api.arn_for_execute_api("POST", "/query", self.api.deployment_stage.stage_name)],
        )

    def grant_feedback(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let an IAM principal call ``POST /feedback`` (thumbs up/down on an answered query)."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["execute-api:Invoke"],
            resource_arns=[self.api.arn_for_execute_api("POST", "/feedback", self.api.deployment_stage.stage_name)],
        )


