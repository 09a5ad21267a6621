"""LlmOpsStage: one environment's stacks, tagged and checked by cdk-nag."""

from __future__ import annotations

import json

from aws_cdk import Annotations, CfnRule, CfnRuleAssertion, Environment, Fn, Stack, Stage, Tags
from constructs import Construct

from llmops.config import EnvironmentConfig
from llmops.cost.policy import check_cost_policy
from llmops.nag import add_rule_packs
from llmops.stacks.foundation import FoundationStack


class LlmOpsStage(Stage):
    """Every stack of one environment (dev, staging, prod, ...).

    The foundation stack always exists; each capability stack exists when its switch under
    ``capabilities`` is on. Capability stacks take the foundation as a prop and read keys,
    buckets and network from it.
    """

    def __init__(self, scope: Construct, env_config: EnvironmentConfig, *, nag: bool = True, delivery=None) -> None:
        """``delivery``: the pipeline's config when it promotes into this environment (its access roles are built)."""
        super().__init__(
            scope,
            env_config.name,
            env=Environment(account=env_config.account, region=env_config.region),
        )
        cfg = env_config
        self.env_config = cfg
        self.platform_functions: list = []  # PlatformFunction appends itself when built in this stage
        check_cost_policy(cfg)  # caps and cost.max_idle_per_day, before any construct is built
        from llmops.delivery.release import release_for_environment

        # The pins of environments.<name>.release (read from the repository, never from AWS).
        self.release = release_for_environment(cfg)
        self.foundation = FoundationStack(
            self,
            "Foundation",
            env_config=cfg,
            stack_name=f"{cfg.name_prefix}-foundation",
            description=f"LLMOps {cfg.name}: keys, buckets, network",
            termination_protection=cfg.is_prod,
        )
        foundation = self.foundation
        caps = cfg.capabilities
        delivery = delivery if delivery is not None and cfg.name in delivery.stages else None
        self.delivery = delivery
        self.promote_role = None
        if delivery is not None and cfg.delivery.model_promotion == "copy":
            from llmops.constructs.delivery import add_promote_role

            self.promote_role = add_promote_role(foundation, cfg, delivery, self.release)
        # Capability stacks (one block each).
        if caps.data_prep:
            from llmops.stacks.data_prep import DataPrepStack

            self.data_prep = DataPrepStack(
                self, "DataPrep", foundation=foundation, env_config=cfg,
                stack_name=f"{cfg.name_prefix}-data-prep",
                description=f"LLMOps {cfg.name}: document extraction, PII redaction, curated datasets, labeling",
            )
        if caps.prompt_catalog:
            from llmops.stacks.prompt_catalog import PromptCatalogStack

            self.prompt_catalog = PromptCatalogStack(
                self, "PromptCatalog", foundation=foundation, env_config=cfg, release=self.release,
                stack_name=f"{cfg.name_prefix}-prompt-catalog",
                description=f"LLMOps {cfg.name}: prompt catalog table, REST API and sync-at-deploy",
            )
        self.inference = None
        if caps.inference:
            from llmops.stacks.inference import InferenceStack

            self.inference = InferenceStack(
                self, "Inference", foundation=foundation, env_config=cfg, release=self.release,
                stack_name=f"{cfg.name_prefix}-inference",
                description=f"LLMOps {cfg.name}: LLM and embedding endpoints, scaling, capture, alarms",
            )
        if caps.rag:
            from llmops.stacks.rag import RagStack

            # The prompt catalog (templates the query function renders), when that capability is on.
            prompt_catalog = getattr(getattr(self, "prompt_catalog", None), "catalog", None)
            self.rag = RagStack(
                self, "Rag", foundation=foundation, env_config=cfg, prompt_catalog=prompt_catalog, inference=self.inference,
                stack_name=f"{cfg.name_prefix}-rag",
                description=f"LLMOps {cfg.name}: RAG vector store, ingestion and query API",
            )
        if caps.fine_tuning:
            from llmops.stacks.fine_tuning import FineTuningStack

            self.fine_tuning = FineTuningStack(
                self, "FineTuning", foundation=foundation, env_config=cfg,
                stack_name=f"{cfg.name_prefix}-fine-tuning",
                description=f"LLMOps {cfg.name}: fine-tuning pipelines, model registry and approvals",
            )
        if self.promote_role is not None and self.inference is not None and getattr(self, "fine_tuning", None) is not None:
            self.inference.add_dependency(self.fine_tuning)  # the copy step registers into its package groups
        self.delivery_access = None
        if delivery is not None:
            from llmops.stacks.delivery import DeliveryAccessStack

            self.delivery_access = DeliveryAccessStack(
                self, "DeliveryAccess", env_config=cfg, delivery=delivery, foundation=foundation,
                rag=getattr(self, "rag", None), inference=self.inference, stack_name=f"{cfg.name_prefix}-delivery-access",
                description=f"LLMOps {cfg.name}: the delivery pipeline's smoke-test and gate role",
            )
        self.human_review = None
        if caps.human_review:
            from llmops.stacks.human_review import HumanReviewStack

            data_prep = getattr(self, "data_prep", None)
            workteam = cfg.human_review.workteam_arn or data_prep.workteam.workteam_arn
            self.human_review = HumanReviewStack(
                self, "HumanReview", foundation=foundation, env_config=cfg, workteam_arn=workteam,
                stack_name=f"{cfg.name_prefix}-human-review",
                description=f"LLMOps {cfg.name}: A2I review of LLM answers, routing, results into datasets",
            )
        if cfg.experiments:  # only where experiments are declared: keeps every other synth lean
            from llmops.stacks.experiments import ExperimentsStack

            self.experiments = ExperimentsStack(
                self, "Experiments", foundation=foundation, env_config=cfg, stack_name=f"{cfg.name_prefix}-experiments",
                description=f"LLMOps {cfg.name}: the scheduled experiment judge and its verdicts",
            )

        if caps.monitoring:
            from llmops.stacks.monitoring import MonitoringStack

            # After RAG, inference and human review: it scores their traffic and routes to review
            # (the review stack never depends on monitoring).
            self.monitoring = MonitoringStack(
                self, "Monitoring", foundation=foundation, env_config=cfg, stack_name=f"{cfg.name_prefix}-monitoring",
                inference=self.inference, rag=getattr(self, "rag", None), human_review=self.human_review,
                description=f"LLMOps {cfg.name}: capture and interaction scoring, drift alarms, metrics table, retraining, dashboard",
            )
            if getattr(self, "fine_tuning", None) is not None:
                self.monitoring.add_dependency(self.fine_tuning)  # starts its pipelines

        tags = cfg.tags
        for key, value in tags.items():
            Tags.of(self).add(key, value)
        # Jobs the functions start at run time (labeling, training) carry the same tags. Every
        # PlatformFunction of this stage has registered itself (no walk over the construct tree).
        cost_tags = json.dumps(tags, sort_keys=True)
        for function in self.platform_functions:
            function.add_environment("COST_TAGS", cost_tags)
        self.rule_packs = add_rule_packs(self, cfg) if nag else []
        if cfg.example:
            self._mark_not_deployable(cfg)

    def _mark_not_deployable(self, cfg: EnvironmentConfig) -> None:
        """An ``example: true`` environment synthesizes, but CloudFormation refuses to deploy it.

        Its placeholder accounts (111111111111, ...) would receive grants. A template rule whose
        assertion is always false makes every create/update fail before any resource changes,
        with the reason below; the metadata says the same to anyone reading the template.
        """
        placeholders = ", ".join(cfg.placeholder_grants()) or "none"
        reason = (
            f"environments.{cfg.name} is marked 'example: true' (placeholder accounts: {placeholders}); "
            "set real account ids and remove 'example: true' in config/environments.yaml to deploy"
        )
        for stack in self.stacks:
            stack.template_options.metadata = {**(stack.template_options.metadata or {}), "llmops:NotDeployable": reason}
            CfnRule(stack, "ExampleEnvironmentNotDeployable", assertions=[
                CfnRuleAssertion(assert_=Fn.condition_equals("example", "deployable"), assert_description=reason[:1000]),
            ])
            Annotations.of(stack).add_warning_v2("llmops:example-environment", f"not deployable: {reason}")

    @property
    def stacks(self) -> list[Stack]:
        return [c for c in self.node.children if isinstance(c, Stack)]
