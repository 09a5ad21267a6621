"""Builds the CDK app: one LlmOpsStage per selected environment."""

from __future__ import annotations

from aws_cdk import App

from llmops.config import ConfigError, PlatformConfig, load_config
from llmops.stage import LlmOpsStage


def selected_environments(config: PlatformConfig, selector: str | None) -> list[str]:
    """``None``/``all`` -> every environment; ``dev`` or ``dev,prod`` -> those, validated."""
    if selector in (None, "", "all", "*"):
        return list(config.environments)
    names = [n.strip() for n in str(selector).split(",") if n.strip()]
    unknown = [n for n in names if n not in config.environments]
    if unknown:
        raise ConfigError(f"env: unknown environment(s) {unknown}; allowed: {', '.join(config.environments)} or all")
    return names


def build_app(app: App | None = None, *, config: PlatformConfig | None = None, nag: bool = True) -> App:
    if app is None:
        # CDK's built-in CloudFormation validation only warns (it fails nothing unless
        # @aws-cdk/core:validateAgainstDefaultRules is set) and costs ~40% of the synthesis phase here:
        # cfn-lint, which `make synth` and CI run on every template, is the platform's template check.
        # `-c cfn_validation=true` runs the built-in one as well (its findings print as warnings).
        app = App(builtin_cloud_formation_validation=False)
        if str(app.node.try_get_context("cfn_validation")).lower() == "true":
            from aws_cdk import CloudFormationValidatePlugin, Validations

            Validations.of(app).add_plugins(CloudFormationValidatePlugin())
    config = config or load_config(app.node.try_get_context("config"))
    stages = {}
    delivery = config.delivery
    promoting = delivery if delivery is not None and delivery.enabled else None
    for name in promoting.stages if promoting else ():
        # The gates check delivery.release_file: an environment deploying another manifest would go unchecked.
        env_release = config.get(name).release
        if env_release is not None and env_release != promoting.release_file:
            raise ConfigError(f"environments.{name}.release: {env_release!r} differs from delivery.release_file "
                              f"{promoting.release_file!r}; the pipeline promotes one manifest through every stage")
    for name in selected_environments(config, app.node.try_get_context("env")):
        stages[name] = LlmOpsStage(app, config.get(name), nag=nag, delivery=promoting)
    # The pipeline deploys the stages above; it exists when every stage it promotes is synthesized.
    if delivery is not None and delivery.enabled and all(n in stages for n in delivery.stages):
        from aws_cdk import Environment

        from llmops.config import REPO_ROOT
        from llmops.delivery.release import ReleaseError, deployment_problems, load_release
        from llmops.nag import add_stack_rule_packs
        from llmops.stacks.delivery import DeliveryStack

        # The pipeline promotes this manifest unchanged: synth refuses one that cannot be deployed.
        try:
            manifest = load_release(REPO_ROOT / delivery.release_file)
        except ReleaseError as err:
            raise ConfigError(f"delivery.release_file: {err}") from None
        problems = deployment_problems(manifest, config)
        if problems:
            raise ConfigError(f"delivery.release_file: {ReleaseError(problems)}")

        stack = DeliveryStack(
            app, "Delivery", config=config, stages=stages,
            env=Environment(account=delivery.account, region=delivery.region),
            stack_name=f"{delivery.name_prefix}-pipeline",
            description="LLMOps delivery: CDK Pipelines promoting one release through the environments",
        )
        if nag:
            add_stack_rule_packs(stack)
    return app
