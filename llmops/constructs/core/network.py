"""PlatformNetwork: an isolated VPC with the endpoints the platform's services need."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from llmops.config import INTERFACE_ENDPOINTS, NetworkConfig
from llmops.constructs.core.log_retention import retention_days


class PlatformNetwork(Construct):
    """Private isolated subnets only (no NAT, no internet gateway), reached through VPC endpoints.

    S3 and DynamoDB use free gateway endpoints; every other AWS API the platform calls goes
    through an interface endpoint named in ``network.interface_endpoints``. Flow logs of all
    traffic go to a CMK-encrypted log group. ``existing_vpc_id`` imports a VPC instead
    (a context lookup: it needs credentials once, then ``cdk.context.json`` pins the result).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: NetworkConfig,
        key: kms.IKey,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, id)
        self.config = config
        if config.existing_vpc_id:
            self.vpc: ec2.IVpc = ec2.Vpc.from_lookup(self, "Vpc", vpc_id=config.existing_vpc_id)
            self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
            self.flow_log_group = None
        else:
            vpc = ec2.Vpc(
                self,
                "Vpc",
                ip_addresses=ec2.IpAddresses.cidr(config.cidr),
                max_azs=config.max_azs,
                nat_gateways=0,
                subnet_configuration=[
                    ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=20)
                ],
                # The default SG is never attached (every resource gets its own); restricting it
                # needs a custom-resource Lambda, which is not worth its cost here.
                restrict_default_security_group=False,
                gateway_endpoints={
                    "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                    "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
                },
            )
            self.vpc = vpc
            self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
            self.flow_log_group = logs.LogGroup(
                self,
                "FlowLogs",
                encryption_key=key,
                retention=retention_days(config.flow_log_retention_days),
                removal_policy=removal_policy,
            )
            vpc.add_flow_log(
                "FlowLog",
                destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
                traffic_type=ec2.FlowLogTrafficType.ALL,
            )

        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="HTTPS from inside the VPC to interface endpoints",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            # The literal CIDR (not the VPC's GetAtt token) so cdk-nag can evaluate the rule.
            ec2.Peer.ipv4(config.cidr if not config.existing_vpc_id else self.vpc.vpc_cidr_block),
            ec2.Port.tcp(443),
            "HTTPS from the VPC",
        )
        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        self.endpoint_subnets = self.subnets
        if config.interface_endpoint_azs and not config.existing_vpc_id:
            # One isolated subnet per AZ, in AZ order: the first N carry the endpoints.
            self.endpoint_subnets = ec2.SubnetSelection(subnets=self.vpc.isolated_subnets[: config.interface_endpoint_azs])
        for name in config.interface_endpoints:
            self.add_interface_endpoint(name)

    def add_interface_endpoint(self, name: str) -> ec2.InterfaceVpcEndpoint:
        """Add (once) the interface endpoint for a service named as in the config."""
        if name in self.interface_endpoints:
            return self.interface_endpoints[name]
        if name not in INTERFACE_ENDPOINTS:
            raise ValueError(f"interface endpoint {name!r} unknown; allowed: {sorted(INTERFACE_ENDPOINTS)}")
        service = getattr(ec2.InterfaceVpcEndpointAwsService, INTERFACE_ENDPOINTS[name])
        endpoint = self.vpc.add_interface_endpoint(
            f"Endpoint-{name}",
            service=service,
            private_dns_enabled=True,
            subnets=self.endpoint_subnets,
            security_groups=[self.endpoint_security_group],
            open=False,  # the shared security group above already admits HTTPS from the VPC CIDR
        )
        self.interface_endpoints[name] = endpoint
        return endpoint

    def for_function(self, needs_vpc: bool) -> "PlatformNetwork | None":
        """The network a function runs in: this one, or none when config keeps it outside the VPC."""
        return self if needs_vpc or self.config.functions_in_vpc == "all" else None

    def security_group_for(self, scope: Construct, id: str, description: str) -> ec2.SecurityGroup:
        """A security group for a workload in this VPC.

        Outbound is open because the subnets have no route out of the VPC: egress can only reach
        the endpoints and in-VPC services.
        """
        return ec2.SecurityGroup(scope, id, vpc=self.vpc, description=description, allow_all_outbound=True)

    @staticmethod
    def from_existing(scope: Construct, id: str, *, vpc_id: str, key: kms.IKey) -> "PlatformNetwork":
        return PlatformNetwork(scope, id, config=NetworkConfig(existing_vpc_id=vpc_id), key=key)

