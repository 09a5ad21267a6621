"""The policy every SageMaker execution role in the VPC needs for the APIs that take no resource ARN."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from llmops.constructs.core.scanner import scanner_exception
from llmops.nag import acknowledge


def sagemaker_unscoped_policy(scope: Construct, id: str, *, role: iam.IRole, subnet_ids: Sequence[str],
                              sid_prefix: str, workload: str) -> iam.Policy:
    """ECR login, the ENIs SageMaker manages in the VPC, and its metrics, as one reviewed policy.

    ``sid_prefix`` ("Job", "Endpoint") names the statements; ``workload`` ("jobs", "endpoints") the reasons.
    """
    stack = Stack.of(scope)
    policy = iam.Policy(scope, id, roles=[role], statements=[
        iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        iam.PolicyStatement(
            sid=f"{sid_prefix}NetworkInterfaces",
            actions=["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
                     "ec2:DeleteNetworkInterfacePermission", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs",
                     "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"],
            resources=["*"],
        ),
        # SageMaker's VPC docs: the permission is only ever for SageMaker, on the workload's subnets.
        iam.PolicyStatement(
            sid=f"{sid_prefix}NetworkInterfacePermissions",
            actions=["ec2:CreateNetworkInterfacePermission"],
            resources=["*"],
            conditions={
                "StringEquals": {"ec2:AuthorizedService": "sagemaker.amazonaws.com"},
                "ArnEquals": {"ec2:Subnet": [f"arn:{stack.partition}:ec2:{stack.region}:{stack.account}:subnet/{s}"
                                             for s in subnet_ids]},
            },
        ),
        iam.PolicyStatement(sid=f"{sid_prefix}Metrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
                            conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}),
    ])
    scanner_exception(policy, "unconstrained-write",
                      f"SageMaker creates and deletes the ENIs of VPC {workload} at run time with ids unknown at deploy "
                      f"time; the one ENI permission write is conditioned on sagemaker and the {workload}' subnets.")
    acknowledge(policy, "AwsSolutions-IAM5[Resource::*]",
                f"ecr:GetAuthorizationToken, the EC2 network-interface calls SageMaker makes for VPC {workload} and "
                "cloudwatch:PutMetricData (limited to /aws/sagemaker/* namespaces) have no resource-level permissions.")
    return policy
