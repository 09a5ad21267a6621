"""DeliveryStack: a CDK Pipelines pipeline in the tooling account that promotes one release.

Source (CodeConnections or S3) -> synth step (the same ``make synth`` and ``make test`` a laptop
runs, plus ``llmops release check``) -> one stage per environment in ``delivery.stages`` order,
each deploying that environment's stacks, with a manual approval before the stages named in
``delivery.manual_approval_before`` and an automatic gate after each stage. The pipeline deploys
the environment stages the app already synthesizes: nothing is built twice.
"""

from __future__ import annotations

from aws_cdk import CfnRule, Fn, Stack, Stage
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import pipelines as cdk_pipelines
from constructs import Construct

from llmops.config import DeliveryConfig, PlatformConfig
from llmops.nag import acknowledge, flatten_reference
from llmops.constructs.delivery import add_gate_role, gate_role_name, promote_role_name, step_role_name

VENV = ".venv/bin"


def gate_commands(env_name: str, release_file: str, role_arn: str | None = None) -> list[str]:
    """The automatic checks after an environment is deployed (asserted by the tests)."""
    role = f" --role-arn {role_arn}" if role_arn else ""
    return [
        "make setup",
        f"{VENV}/llmops release check {release_file} --env {env_name}",
        f"{VENV}/llmops delivery gate --env {env_name} --release {release_file}{role}",
    ]


def smoke_commands(env_name: str, role_arn: str) -> list[str]:
    """The post-deploy smoke test; QUERY_URL and the endpoint names come from the stacks' outputs."""
    return ["make setup", f"{VENV}/llmops delivery smoke --env {env_name} --role-arn {role_arn}"]


def promote_commands(env_name: str, release_file: str, role_arn: str) -> list[str]:
    """The copy step (model_promotion: copy) before the environment's inference stack."""
    return ["make setup", f"{VENV}/llmops delivery promote-model --env {env_name} --release {release_file} --role-arn {role_arn}"]


def _reason_for(resource: str, actions: list[str]) -> str:
    if "ArtifactsBucket" in resource:
        return "Objects of the pipeline's own artifact bucket: build outputs are written under generated keys."
    if ":log-group:/aws/codebuild/" in resource:
        return "The CodeBuild project's own log group and streams; stream names are generated per build."
    if ":report-group/" in resource:
        return "CodeBuild report groups named after the project; CodeBuild creates them per build."
    if ":model-package/" in resource:
        return "The gate reads the approved packages of the environment's own package groups; versions appear at run time."
    if ":stack/" in resource and actions == ["cloudformation:DescribeStacks"]:
        return "Self-mutation describes the pipeline's own stack; the suffix is the stack id CloudFormation assigns."
    if resource == "*" and set(actions) <= {"codebuild:BatchGetBuilds", "codebuild:StartBuild", "codebuild:StopBuild"}:
        return "CDK Pipelines' asset-publishing role starts its own publishing builds, whose projects it creates later."
    raise ValueError(f"unreviewed wildcard {resource} for {actions}: scope it or add a reason here")


class DeliveryStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: PlatformConfig,
        stages: dict[str, Stage],
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        delivery: DeliveryConfig = config.delivery  # type: ignore[assignment]
        self.delivery = delivery
        source = self._source(delivery)
        synth = cdk_pipelines.ShellStep(
            "Synth",
            input=source,
            install_commands=["npm ci --no-audit --no-fund"],
            # The same gates as a laptop: cdk-nag and cfn-lint fail `make synth`; then the tests.
            commands=["make synth", "make test", f"{VENV}/llmops release check {delivery.release_file}"],
            primary_output_directory="cdk.out",
        )
        self.pipeline = cdk_pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=f"{delivery.name_prefix}-release",
            synth=synth,
            pipeline_type=codepipeline.PipelineType.V2,
            cross_account_keys=True,  # stages in other accounts read artifacts with the pipeline's key
            enable_key_rotation=True,
            self_mutation=True,
            docker_enabled_for_synth=False,
            code_build_defaults=cdk_pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=codebuild.LinuxArmBuildImage.AMAZON_LINUX_2023_STANDARD_3_0,
                    compute_type=codebuild.ComputeType.LARGE,
                )
            ),
        )
        self.stage_order = list(delivery.stages)
        self.step_roles: dict[str, iam.Role] = {}
        for name in self.stage_order:
            env = config.get(name)
            stage = stages[name]
            pre = []
            if name in delivery.manual_approval_before:
                pre.append(cdk_pipelines.ManualApprovalStep(
                    f"Approve-{name}", comment=f"Promote the release to {name}? The gates of the previous stage passed."
                ))
            role = self._step_role(config, name)
            gate_role = self._env_role_arn(config, name, gate_role_name(env))
            post: list[cdk_pipelines.Step] = []
            if not env.production:  # after dev and staging: prod gets no synthetic traffic
                outputs = {}
                if getattr(stage, "rag", None) is not None:
                    outputs["QUERY_URL"] = stage.rag.query_url_output
                if stage.inference is not None:
                    outputs["LLM_ENDPOINT"] = stage.inference.endpoint_outputs["Llm"]
                    if "Embeddings" in stage.inference.endpoint_outputs:
                        outputs["EMBEDDINGS_ENDPOINT"] = stage.inference.endpoint_outputs["Embeddings"]
                post.append(cdk_pipelines.CodeBuildStep(
                    f"Smoke-{name}", input=source, role=role, env_from_cfn_outputs=outputs,
                    commands=smoke_commands(name, gate_role)))
            post.append(cdk_pipelines.CodeBuildStep(
                f"Gate-{name}",
                input=source,
                role=role,
                commands=gate_commands(name, delivery.release_file, gate_role if env.experiments else None),
            ))
            stack_steps = []
            if env.delivery.model_promotion == "copy" and stage.inference is not None:
                promote = cdk_pipelines.CodeBuildStep(
                    f"PromoteModel-{name}", input=source, role=role,
                    commands=promote_commands(name, delivery.release_file,
                                              self._env_role_arn(config, name, promote_role_name(env))))
                stack_steps.append(cdk_pipelines.StackSteps(stack=stage.inference, pre=[promote]))
            self.pipeline.add_stage(stage, pre=pre, post=post, stack_steps=stack_steps or None)
        self.pipeline.build_pipeline()  # materialise the generated roles so they can be scoped and reviewed
        self._scope_self_mutation(delivery)
        self._acknowledge_generated_grants()
        acknowledge(
            self.pipeline.pipeline.artifact_bucket.node.default_child,
            "AwsSolutions-S1",
            "The pipeline's artifact bucket holds build outputs only; it is KMS-encrypted with the pipeline's "
            "cross-account key and every access is a CodePipeline/CodeBuild role recorded by CloudTrail.",
        )
        if delivery.example:
            # Example accounts: the template synthesizes for review and refuses to deploy.
            CfnRule(self, "ExampleAccountsOnly", assertions=[
                {"assert": Fn.condition_equals("example-accounts", "replaced"),
                 "assertDescription": "config/environments.yaml delivery uses example accounts (delivery.example: true): "
                                      "put your accounts there and set example: false before deploying the pipeline"},
            ])

    def _scope_self_mutation(self, delivery: DeliveryConfig) -> None:
        """Replace CDK Pipelines' ``sts:AssumeRole`` on ``role/*`` with the tooling account's bootstrap roles."""
        policy = self.pipeline.self_mutation_project.role.node.try_find_child("DefaultPolicy")
        cfn = policy.node.default_child
        document = self.resolve(cfn.policy_document)
        account, region = delivery.account, delivery.region
        qualifier = "hnb659fds"  # the CDK bootstrap default
        for statement in document["Statement"]:
            if statement.get("Action") == "sts:AssumeRole":
                statement["Resource"] = [
                    f"arn:aws:iam::{account}:role/cdk-{qualifier}-{kind}-role-{account}-{region}"
                    for kind in ("deploy", "file-publishing", "image-publishing")
                ]
                statement.pop("Condition", None)
            if sorted(statement.get("Action", [])) == ["cloudformation:DescribeStacks", "s3:ListBucket"]:
                statement["Action"] = "cloudformation:DescribeStacks"
                statement["Resource"] = f"arn:aws:cloudformation:{region}:{account}:stack/{self.stack_name}/*"
        cfn.add_property_override("PolicyDocument", document)
        self._overridden = {cfn.node.path: document}
        # cdk-nag reads the construct's properties, not the override: these two findings name statements
        # the synthesized template no longer has (tests/llmops/stacks/test_delivery_stack.py checks it).
        acknowledge(cfn, "AwsSolutions-IAM5[Resource::arn:*:iam::<AWS::AccountId>:role/*]".replace("<AWS::AccountId>", account),
                    "Overridden: the template lets self-mutation assume only the three CDK bootstrap roles of the tooling account.")
        acknowledge(cfn, "AwsSolutions-IAM5[Resource::*]",
                    "Overridden: the template scopes DescribeStacks to the pipeline's own stack and drops s3:ListBucket on *.")

    def _acknowledge_generated_grants(self) -> None:
        """Name each wildcard CDK Pipelines generates, with the reason it is there."""
        for policy in (c for c in self.node.find_all() if isinstance(c, iam.CfnPolicy)):
            document = self._overridden.get(policy.node.path) or self.resolve(policy.policy_document)
            for statement in document["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                for action in actions:
                    if "*" in action:
                        acknowledge(policy, f"AwsSolutions-IAM5[Action::{action}]",
                                    f"CDK Pipelines' generated grant on its own artifact bucket and key ({action} "
                                    "expands to the read/write object and data-key actions of that one bucket/key).")
                for resource in resources:
                    flat = flatten_reference(resource)
                    if "*" not in flat:
                        continue
                    acknowledge(policy, f"AwsSolutions-IAM5[Resource::{flat}]", _reason_for(flat, actions))

    def _source(self, delivery: DeliveryConfig) -> cdk_pipelines.CodePipelineSource:
        src = delivery.source
        if src.kind == "s3":  # air-gapped accounts: a zip of the repository, uploaded by the team
            bucket = s3.Bucket.from_bucket_name(self, "SourceBucket", src.bucket)
            return cdk_pipelines.CodePipelineSource.s3(bucket, src.key)
        return cdk_pipelines.CodePipelineSource.connection(src.repository, src.branch, connection_arn=src.connection_arn)

    def _env_role_arn(self, config: PlatformConfig, name: str, role_name: str) -> str:
        env = config.get(name)
        return f"arn:aws:iam::{env.account or self.delivery.account}:role/{role_name}"

    def _step_role(self, config: PlatformConfig, name: str) -> iam.Role:
        """One environment's post-deploy step role: it may assume that environment's delivery roles, nothing else."""
        env = config.get(name)
        role = iam.Role(
            self, f"StepRole-{name}", role_name=step_role_name(self.delivery, name),
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"Smoke test, gates and model copy of the {name} stage (assumes that environment's delivery roles)",
        )
        targets = [self._env_role_arn(config, name, gate_role_name(env))]
        if env.delivery.model_promotion == "copy":
            targets.append(self._env_role_arn(config, name, promote_role_name(env)))
        role.add_to_policy(iam.PolicyStatement(sid="AssumeEnvironmentDeliveryRoles", actions=["sts:AssumeRole"], resources=targets))
        self.step_roles[name] = role
        return role


class DeliveryAccessStack(Stack):
    """In each environment the pipeline promotes into: the role its smoke test and gate assume there."""

    def __init__(self, scope: Construct, id: str, *, env_config, delivery: DeliveryConfig, foundation,
                 rag=None, inference=None, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self.role = add_gate_role(self, env_config=env_config, delivery=delivery, foundation=foundation,
                                  rag=rag, inference=inference)
