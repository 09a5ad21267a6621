"""InferenceStack: the environment's LLM and embedding endpoints, their scaling, alarms and dashboard.

The RAG stack uses these endpoints (``grant_invoke``) unless ``rag.llm_endpoint_name`` /
``rag.embedding_endpoint_name`` name existing ones. An approved fine-tuned model is the release
manifest's pin when the environment names one (``release``), else read from the SSM parameter the
fine-tuning approval recorder writes, at deploy time (never looked up at synth).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from lambdas.runtime.fine_tuning.approval import approved_model_parameter_name
from llmops.config import EnvironmentConfig, embedding_arms_needing_endpoints
from llmops.constructs.inference import EmbeddingEndpoint, LlmEndpoint, ServingContext
from llmops.stacks.foundation import FoundationStack


class InferenceStack(Stack):
    def __init__(self, scope: Construct, id: str, *, foundation: FoundationStack, env_config: EnvironmentConfig,
                 release: Any = None, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        cfg = env_config
        self.env_config = cfg
        ctx = ServingContext(env_config=cfg, key=foundation.key, network=foundation.network, artifacts=foundation.artifacts,
                             data=foundation.data, alarm_action=foundation.alarm_action, release=release)
        self.llm = LlmEndpoint(self, "Llm", ctx=ctx,
                               approved_parameter_name=lambda use_case: approved_model_parameter_name(cfg.name_prefix, use_case))
        self.embeddings = EmbeddingEndpoint(self, "Embeddings", ctx=ctx) if cfg.inference.embeddings.enabled else None
        # Embedding A/B: an endpoint per arm whose model runs on SageMaker (the control arm is the endpoint above).
        self.embedding_arms: dict[str, EmbeddingEndpoint] = {
            arm.name: EmbeddingEndpoint(self, f"EmbeddingsArm{arm.name}", ctx=ctx, arm=(arm.name, arm.model, arm.dimension))
            for arm in embedding_arms_needing_endpoints(cfg)
        }
        endpoints = [e for e in (self.llm, self.embeddings, *self.embedding_arms.values()) if e is not None]
        # One dashboard per environment (a dashboard costs $3/month): with monitoring on, the
        # environment dashboard (MonitoringStack) shows these endpoints, so this one is left out.
        self.alarms = [a for e in endpoints for a in e.alarms]
        self.dashboard = None if cfg.capabilities.monitoring else cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{cfg.name_prefix}-inference", widgets=[[
            cloudwatch.GraphWidget(title=f"{e.endpoint_name} invocations and 5xx", left=[e.metric_invocations()],
                                   right=[e.metric_errors()], width=12) for e in endpoints
        ], [
            cloudwatch.GraphWidget(title=f"{e.endpoint_name} model latency p50/p90 (µs)",
                                   left=[e.metric_latency(statistic="p50"), e.metric_latency()], width=12) for e in endpoints
        ], *self._variant_widgets(), [cloudwatch.AlarmStatusWidget(title="Inference alarms", alarms=[a for e in endpoints for a in e.alarms],
                                                                   width=24)]])
        # The pipeline's smoke test reads them (CDK Pipelines env_from_cfn_outputs).
        self.endpoint_outputs = {e.node.id: CfnOutput(self, f"{e.node.id}EndpointName", value=e.endpoint_name) for e in endpoints}

    def _variant_widgets(self) -> list[list[cloudwatch.IWidget]]:
        """Per-variant traffic and latency when the LLM endpoint has several (an A/B or shadow experiment's arms)."""
        variants = [v.name for v in self.llm.variants]
        if len(variants) < 2 or self.llm.components:
            return []
        return [[
            cloudwatch.GraphWidget(title=f"{self.llm.endpoint_name} invocations per variant",
                                   left=[self.llm.metric_invocations(v) for v in variants], width=12),
            cloudwatch.GraphWidget(title=f"{self.llm.endpoint_name} model latency p90 per variant (µs)",
                                   left=[self.llm.metric_latency(v) for v in variants], width=12),
        ]]

    @property
    def rag_container(self) -> str:
        """The request shape the RAG query speaks to the LLM endpoint (llm.py): TGI's, LMI's or vLLM's (OpenAI)."""
        if self.llm.container in ("tgi", "tgi-neuronx"):
            return "tgi"
        return "vllm" if self.llm.container == "vllm" else "djl-lmi"
