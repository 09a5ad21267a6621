"""What the tooling account's pipeline may do inside one environment, as roles that environment owns.

- ``<name_prefix>-delivery-gate`` (``llmops.stacks.delivery.DeliveryAccessStack``): the smoke test's signed ``POST /query`` and
  ``InvokeEndpoint`` on the environment's two endpoints, and the verdict gate's read of
  ``experiments/verdicts/`` in the data bucket. Nothing else.
- ``<name_prefix>-delivery-promote`` (in the foundation stack, so it exists before the inference
  stack; only with ``delivery.model_promotion: copy``): the copy step's describe of the release's
  package, read of its artifacts in the source account, write of ``promoted/`` in this account's
  artifacts bucket, registration in this account's package groups and the one SSM parameter per
  use case the endpoint template reads.

Both trust only the tooling account's step role for this environment
(``<delivery name_prefix>-<env>-gate``), by ``aws:PrincipalArn``: the trust survives that role
being recreated (a role ARN as principal would be pinned to the old role's unique id). Each
pipeline step role may assume only these ARNs.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from llmops.config import DeliveryConfig, EnvironmentConfig
from llmops.nag import acknowledge_wildcard_resource

VERDICTS_PREFIX = "experiments/verdicts/"


def step_role_name(delivery: DeliveryConfig, env_name: str) -> str:
    """The tooling account's CodeBuild role of one environment's post-deploy steps."""
    return f"{delivery.name_prefix}-{env_name}-gate"[:64]


def gate_role_name(env: EnvironmentConfig) -> str:
    return f"{env.name_prefix}-delivery-gate"


def promote_role_name(env: EnvironmentConfig) -> str:
    return f"{env.name_prefix}-delivery-promote"


def _trust(delivery: DeliveryConfig, env_name: str) -> iam.IPrincipal:
    step = f"arn:aws:iam::{delivery.account}:role/{step_role_name(delivery, env_name)}"
    return iam.AccountPrincipal(delivery.account).with_conditions({"ArnEquals": {"aws:PrincipalArn": step}})


def add_gate_role(scope: Construct, *, env_config: EnvironmentConfig, delivery: DeliveryConfig, foundation,
                  rag=None, inference=None) -> iam.Role:
    """The smoke test's and verdict gate's role (``<name_prefix>-delivery-gate``)."""
    cfg = env_config
    role = iam.Role(
        scope, "GateRole", role_name=gate_role_name(cfg), assumed_by=_trust(delivery, cfg.name),
        description=f"The delivery pipeline's smoke test and verdict gate in {cfg.name}",
    )
    if rag is not None:
        rag.grant_query(role)
    if inference is not None:
        for endpoint in (inference.llm, inference.embeddings):
            if endpoint is not None:
                endpoint.grant_invoke(role)
    if cfg.experiments:
        foundation.data.grant_read(role, VERDICTS_PREFIX)
    return role


def add_promote_role(foundation, env_config: EnvironmentConfig, delivery: DeliveryConfig, release) -> iam.Role:
    """The copy step's role (``model_promotion: copy``), in the foundation stack."""
    stack = Stack.of(foundation)
    cfg = env_config
    role = iam.Role(foundation, "DeliveryPromoteRole", role_name=promote_role_name(cfg), assumed_by=_trust(delivery, cfg.name),
                    description=f"The delivery pipeline's model copy into {cfg.name}'s registry")
    from lambdas.runtime.delivery.model_copy import PROMOTED_PREFIX, SOURCE_RUNS_PREFIX, copied_package_parameter
    from llmops.delivery.release import _PACKAGE_ARN

    foundation.artifacts.grant_write(role, PROMOTED_PREFIX)
    use_cases = sorted(release.models) if release is not None else sorted(cfg.fine_tuning.use_cases)
    groups = [stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=f"{cfg.name_prefix}-{u}")
              for u in use_cases]
    packages = [stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{cfg.name_prefix}-{u}/*")
                for u in use_cases]
    role.add_to_policy(iam.PolicyStatement(
        sid="RegisterCopies", actions=["sagemaker:CreateModelPackage", "sagemaker:ListModelPackages",
                                       "sagemaker:DescribeModelPackage", "sagemaker:AddTags"],
        resources=groups + packages))
    if release is not None:
        role.add_to_policy(iam.PolicyStatement(
            sid="RecordCopies", actions=["ssm:PutParameter"],
            resources=[stack.format_arn(service="ssm", resource=f"parameter{copied_package_parameter(cfg.name_prefix, u, p.model_package_arn)}")
                       for u, p in sorted(release.models.items())]))
        sources = sorted({p.model_package_arn for p in release.models.values()})
        role.add_to_policy(iam.PolicyStatement(sid="DescribeSources", actions=["sagemaker:DescribeModelPackage"], resources=sources))
        for use_case, pin in sorted(release.models.items()):
            match = _PACKAGE_ARN.match(pin.model_package_arn)
            partition, region, account = pin.model_package_arn.split(":")[1], pin.model_package_arn.split(":")[3], match.group(1)
            source_prefix = match.group(2).removesuffix(f"-{use_case}")
            bucket = f"{source_prefix}-artifacts-{account}-{region}"
            role.add_to_policy(iam.PolicyStatement(
                sid=f"ReadSource{use_case.replace('-', '').title()}", actions=["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"],
                resources=[f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/{SOURCE_RUNS_PREFIX}*"]))
            key = f"arn:{partition}:kms:{region}:{account}:key/*"
            role.add_to_policy(iam.PolicyStatement(
                sid=f"DecryptSource{use_case.replace('-', '').title()}", actions=["kms:Decrypt", "kms:DescribeKey"], resources=[key],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}))
            policy = role.node.find_child("DefaultPolicy")
            acknowledge_wildcard_resource(policy, f"arn:{partition}:s3:::{bucket}/{SOURCE_RUNS_PREFIX}*",
                                          "Fine-tuning runs write model artifacts under generated run ids.")
            acknowledge_wildcard_resource(policy, key, "The source account's platform key (id unknown here), through S3 only; "
                                          "its key policy grants it back to this account.")
    policy = role.node.find_child("DefaultPolicy")
    for arn in packages:
        acknowledge_wildcard_resource(policy, arn, "Copies get their version number at registration.")
    return role
