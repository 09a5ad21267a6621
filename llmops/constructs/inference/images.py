"""Serving image URIs from the committed table (``llmops/inference_images.json``), per region at deploy."""

from __future__ import annotations

from aws_cdk import Aws, CfnMapping, Stack
from constructs import Construct

from llmops.inference import image


def image_uri(scope: Construct, container: str, tag: str | None = None) -> str:
    """``<registry>.dkr.ecr.<region>.<suffix>/<repository>:<tag>``, the registry account looked up by region.

    ``tag``: the release manifest's pin (``images``); else the committed table's tag.
    """
    stack = Stack.of(scope)
    row = image(container)
    mapping_id = f"ImageRegistry{container.replace('-', '').title()}"
    mapping = stack.node.try_find_child(mapping_id)
    if mapping is None:
        mapping = CfnMapping(stack, mapping_id, mapping={r: {"account": a} for r, a in row["registries"].items()})
    account = mapping.find_in_map(Aws.REGION, "account")
    return f"{account}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/{row['repository']}:{tag or row['tag']}"


def repository_arns(scope: Construct, containers: set[str]) -> list[str]:
    """ECR repository ARNs of these containers in the stack's region (any AWS-owned registry account)."""
    stack = Stack.of(scope)
    repos = sorted({image(c)["repository"] for c in containers})
    return [f"arn:{stack.partition}:ecr:{stack.region}:*:repository/{r}" for r in repos]
