"""Vector store constructs: OpenSearch Serverless, Aurora pgvector and Kendra template assertions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from llmops.config import ConfigError, NetworkConfig
from llmops.constructs.rag.aurora_vector_store import AuroraVectorStore
from llmops.constructs.rag.kendra_retriever import KendraRetriever
from llmops.constructs.core.network import PlatformNetwork
from llmops.constructs.rag.opensearch_vector_store import OpenSearchVectorStore
from llmops.constructs.core.platform_function import PlatformFunction
from llmops.constructs.rag import vector_store_for
from tests.helpers import config_with, make_app


def flat(value: Any) -> str:
    """A resolved CloudFormation string with every reference replaced by <ref:Name>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(flat(p) for p in parts)
    if "Fn::GetAtt" in value:
        return f"<ref:{value['Fn::GetAtt'][0]}>"
    if "Ref" in value:
        return f"<ref:{value['Ref']}>"
    if "Fn::ImportValue" in value:
        return "<import>"
    raise AssertionError(f"unexpected value {value}")


def scaffold():
    stack = Stack(make_app(), "S")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    network = PlatformNetwork(stack, "Net", config=NetworkConfig(interface_endpoints=("secrets_manager",)), key=key)
    reader = PlatformFunction(stack, "Reader", entry="rag_query", key=key, network=network, description="reads", invoked_by="t")
    writer = PlatformFunction(stack, "Writer", entry="rag_ingest", key=key, network=network, description="writes", invoked_by="t")
    return stack, key, network, reader, writer


def logical_id(stack: Stack, construct) -> str:
    return stack.get_logical_id(construct.node.default_child)


def policies(template: Template, kind: str) -> list[Any]:
    found = template.find_resources("AWS::OpenSearchServerless::SecurityPolicy", {"Properties": {"Type": kind}})
    found |= template.find_resources("AWS::OpenSearchServerless::AccessPolicy", {"Properties": {"Type": kind}})
    return [json.loads(flat(r["Properties"]["Policy"])) for r in found.values()]


# -- OpenSearch Serverless ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def aoss():
    stack, key, network, reader, writer = scaffold()
    store = OpenSearchVectorStore(stack, "Store", collection_name="team-rag", key=key, network=network,
                                  dimension=768, space="innerproduct", standby_replicas=False)
    store.grant_read(reader)
    store.grant_write(writer)
    return stack, store, reader, writer, Template.from_stack(stack)


def test_aoss_collection_is_vectorsearch_without_standby_replicas(aoss):
    *_, template = aoss
    template.has_resource_properties("AWS::OpenSearchServerless::Collection",
                                     {"Name": "team-rag", "Type": "VECTORSEARCH", "StandbyReplicas": "DISABLED"})


def test_aoss_encryption_policy_uses_the_platform_cmk(aoss):
    stack, *_, template = aoss
    (policy,) = policies(template, "encryption")
    assert policy == {"Rules": [{"ResourceType": "collection", "Resource": ["collection/team-rag"]}],
                      "AWSOwnedKey": False, "KmsARN": f"<ref:{stack.get_logical_id(stack.node.find_child('Key').node.default_child)}>"}
    # Created before the collection, as AOSS requires.
    collection = next(iter(template.find_resources("AWS::OpenSearchServerless::Collection").values()))
    assert any("EncryptionPolicy" in dep for dep in collection["DependsOn"])


def test_aoss_is_private_by_default_through_a_vpc_endpoint_in_isolated_subnets(aoss):
    stack, store, *_, template = aoss
    (policy,) = policies(template, "network")
    assert policy == [{"Rules": [{"ResourceType": "collection", "Resource": ["collection/team-rag"]}],
                       "AllowFromPublic": False, "SourceVPCEs": [f"<ref:{stack.get_logical_id(store.vpc_endpoint)}>"]}]
    endpoint = next(iter(template.find_resources("AWS::OpenSearchServerless::VpcEndpoint").values()))["Properties"]
    assert len(endpoint["SubnetIds"]) == 2
    assert all("isolated" in s["Ref"] for s in endpoint["SubnetIds"])


def test_aoss_public_access_only_when_asked():
    stack, key, network, reader, _ = scaffold()
    store = OpenSearchVectorStore(stack, "Store", collection_name="team-rag", key=key, network=network, dimension=4,
                                  public_access=True)
    store.grant_read(reader)
    template = Template.from_stack(stack)
    (policy,) = policies(template, "network")
    assert policy[0]["AllowFromPublic"] is True and "SourceVPCEs" not in policy[0]
    template.resource_count_is("AWS::OpenSearchServerless::VpcEndpoint", 1)  # the in-VPC functions' path


def test_aoss_data_access_policy_names_exactly_the_granted_roles(aoss):
    stack, store, reader, writer, template = aoss
    (policy,) = policies(template, "data")
    by_description = {s["Description"]: s for s in policy}
    role = lambda fn: f"<ref:{stack.get_logical_id(fn.role.node.default_child)}>"  # noqa: E731
    assert by_description["search the RAG index"]["Principal"] == [role(reader)]
    assert by_description["search the RAG index"]["Rules"][0] == {
        "ResourceType": "index", "Resource": ["index/team-rag/*"], "Permission": ["aoss:DescribeIndex", "aoss:ReadDocument"]}
    assert by_description["write RAG chunks"]["Principal"] == [role(writer)]
    assert "aoss:WriteDocument" in by_description["write RAG chunks"]["Rules"][0]["Permission"]
    admin = by_description["manage the RAG index and alias"]
    assert admin["Principal"] == [role(store.index_function)]
    assert "aoss:CreateIndex" in admin["Rules"][0]["Permission"]
    assert "aoss:UpdateCollectionItems" in admin["Rules"][1]["Permission"]
    # Readers cannot write or manage indexes.
    assert not {"aoss:WriteDocument", "aoss:CreateIndex", "aoss:DeleteIndex"} & set(
        by_description["search the RAG index"]["Rules"][0]["Permission"])


def test_aoss_iam_grants_are_api_access_on_this_collection_only(aoss):
    stack, store, reader, _, template = aoss
    policy = template.to_json()["Resources"][stack.get_logical_id(reader.role.node.find_child("DefaultPolicy").node.default_child)]
    statements = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "aoss" in json.dumps(s["Action"])]
    assert statements == [{"Action": "aoss:APIAccessAll", "Effect": "Allow",
                           "Resource": {"Fn::GetAtt": [stack.get_logical_id(store.collection), "Arn"]}}]


def test_aoss_index_custom_resource_carries_the_mapping_inputs(aoss):
    stack, store, *_, template = aoss
    template.has_resource_properties("Custom::VectorIndex", {
        "CollectionEndpoint": {"Fn::GetAtt": [stack.get_logical_id(store.collection), "CollectionEndpoint"]},
        "Alias": "rag-chunks", "Dimension": "768", "Space": "innerproduct", "RemovalPolicy": "retain",
    })
    template.has_resource_properties("AWS::Lambda::Function", {"Handler": "lambdas.rag_vector_index.handler.handler",
                                                               "Timeout": 600, "VpcConfig": Match.any_value()})


def test_aoss_connection_environment(aoss):
    stack, store, *_ = aoss
    env = store.connection_environment()
    assert env["VECTOR_STORE_BACKEND"] == "opensearch-serverless"
    assert env["AOSS_INDEX"] == "rag-chunks" and env["EMBEDDING_DIMENSION"] == "768" and env["VECTOR_SPACE"] == "innerproduct"
    assert stack.resolve(env["AOSS_ENDPOINT"]) == {"Fn::GetAtt": [stack.get_logical_id(store.collection), "CollectionEndpoint"]}


@pytest.mark.parametrize("kwargs,prop", [({"collection_name": "Team"}, "collection_name"),
                                         ({"collection_name": "a-very-long-collection-name-x"}, "collection_name"),
                                         ({"dimension": 1}, "dimension"), ({"space": "cosine"}, "space"),
                                         ({"index_alias": "Bad Alias"}, "index_alias")])
def test_aoss_bad_props_are_named(kwargs, prop):
    stack, key, network, *_ = scaffold()
    args = {"collection_name": "team-rag", "dimension": 4, **kwargs}
    with pytest.raises(ValueError, match=prop):
        OpenSearchVectorStore(stack, "Store", key=key, network=network, **args)


# -- Aurora pgvector ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def aurora():
    stack, key, network, reader, writer = scaffold()
    store = AuroraVectorStore(stack, "Store", key=key, network=network, dimension=384, cluster_identifier="team-rag",
                              removal_policy=RemovalPolicy.DESTROY)
    store.grant_read(reader)
    store.grant_write(writer)
    return stack, key, store, reader, writer, Template.from_stack(stack)


def test_aurora_is_serverless_v2_scaling_to_zero_with_auto_pause(aurora):
    *_, template = aurora
    template.has_resource_properties("AWS::RDS::DBCluster", {
        "Engine": "aurora-postgresql",
        "ServerlessV2ScalingConfiguration": {"MinCapacity": 0, "MaxCapacity": 4, "SecondsUntilAutoPause": 600},
        "StorageEncrypted": True, "KmsKeyId": Match.any_value(), "EnableIAMDatabaseAuthentication": True,
        "DeletionProtection": False, "DatabaseName": "rag", "EnableCloudwatchLogsExports": ["postgresql"],
    })
    template.has_resource_properties("AWS::RDS::DBInstance", {"DBInstanceClass": "db.serverless", "PubliclyAccessible": False})


def test_aurora_secret_is_cmk_encrypted_and_rotated_in_the_vpc(aurora):
    stack, key, *_, template = aurora
    template.has_resource_properties("AWS::SecretsManager::Secret", {"KmsKeyId": {"Fn::GetAtt": [stack.get_logical_id(key.node.default_child), "Arn"]}})
    template.has_resource_properties("AWS::SecretsManager::RotationSchedule", {
        "HostedRotationLambda": Match.object_like({"RotationType": "PostgreSQLSingleUser", "VpcSubnetIds": Match.any_value(),
                                                   "VpcSecurityGroupIds": Match.any_value()}),
        "RotationRules": {"ScheduleExpression": "rate(30 days)"},
    })


def test_aurora_log_group_is_made_first_with_the_cmk(aurora):
    *_, template = aurora
    template.has_resource_properties("AWS::Logs::LogGroup", {"LogGroupName": "/aws/rds/cluster/team-rag/postgresql",
                                                             "KmsKeyId": Match.any_value()})


def test_aurora_grants_open_the_port_to_the_function_and_read_the_secret(aurora):
    stack, key, store, reader, writer, template = aurora
    for fn in (reader, writer):
        template.has_resource_properties("AWS::EC2::SecurityGroupIngress", {
            "IpProtocol": "tcp", "FromPort": {"Fn::GetAtt": [Match.any_value(), "Endpoint.Port"]},
            "SourceSecurityGroupId": {"Fn::GetAtt": [stack.get_logical_id(fn.security_group.node.default_child), "GroupId"]},
        })
    policy = template.to_json()["Resources"][stack.get_logical_id(reader.role.node.find_child("DefaultPolicy").node.default_child)]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    secret_stmt = next(s for s in statements if "secretsmanager:GetSecretValue" in s["Action"])
    assert "Ref" in secret_stmt["Resource"]  # this one secret, not a wildcard
    kms_stmt = next(s for s in statements if s["Action"] == "kms:Decrypt")
    assert kms_stmt["Condition"] == {"StringEquals": {"kms:ViaService": {"Fn::Join": ["", ["secretsmanager.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}}}
    # No ingress from anywhere but security groups.
    for ingress in template.find_resources("AWS::EC2::SecurityGroupIngress").values():
        assert "CidrIp" not in ingress["Properties"]


def test_aurora_schema_custom_resource(aurora):
    stack, key, store, *_, template = aurora
    template.has_resource_properties("Custom::PgVectorSchema", {
        "SecretArn": {"Ref": Match.any_value()}, "Database": "rag", "Table": "rag_chunks", "Dimension": "384"})
    assert store.connection_environment()["PG_TABLE"] == "rag_chunks"
    assert store.connection_environment()["VECTOR_STORE_BACKEND"] == "aurora-pgvector"


@pytest.mark.parametrize("kwargs,prop", [({"table_name": "Rag-Chunks"}, "table_name"), ({"database_name": "1db"}, "database_name"),
                                         ({"min_capacity": 8, "max_capacity": 4}, "min_capacity")])
def test_aurora_bad_props_are_named(kwargs, prop):
    stack, key, network, *_ = scaffold()
    with pytest.raises(ValueError, match=prop):
        AuroraVectorStore(stack, "Store", key=key, network=network, dimension=4, cluster_identifier="x-rag", **kwargs)


def test_aurora_grant_needs_a_function_in_the_vpc():
    from aws_cdk import aws_iam as iam

    stack, key, network, *_ = scaffold()
    store = AuroraVectorStore(stack, "Store", key=key, network=network, dimension=4, cluster_identifier="x-rag")
    role = iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    with pytest.raises(ValueError, match="platform VPC"):
        store.grant_read(role)


# -- Kendra and selection -----------------------------------------------------------------------

def test_kendra_index_is_cmk_encrypted_with_an_s3_source_and_scoped_grants():
    from llmops.constructs.core.secure_bucket import SecureBucket

    stack, key, network, reader, _ = scaffold()
    logs_bucket = __import__("aws_cdk").aws_s3.Bucket(stack, "Logs")
    data = SecureBucket(stack, "Data", bucket_name="team-data-bucket", key=key, access_logs=logs_bucket,
                        removal_policy=RemovalPolicy.DESTROY)
    store = KendraRetriever(stack, "Kendra", name="team-rag", key=key, data_bucket=data)
    store.grant_read(reader)
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::Kendra::Index", {"Edition": "DEVELOPER_EDITION",
                                                            "ServerSideEncryptionConfiguration": {"KmsKeyId": Match.any_value()}})
    template.has_resource_properties("AWS::Kendra::DataSource", {
        "Type": "S3", "DataSourceConfiguration": {"S3Configuration": Match.object_like({"InclusionPrefixes": ["uploads/"]})}})
    policy = template.to_json()["Resources"][stack.get_logical_id(reader.role.node.find_child("DefaultPolicy").node.default_child)]
    stmt = next(s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "kendra:Retrieve" in s["Action"])
    assert "index/" in flat(stmt["Resource"]) and "*" not in flat(stmt["Resource"])
    assert store.connection_environment()["VECTOR_STORE_BACKEND"] == "kendra"


def test_vector_store_for_follows_the_config():
    for backend, cls in (("opensearch-serverless", OpenSearchVectorStore), ("aurora-pgvector", AuroraVectorStore)):
        stack, key, network, *_ = scaffold()
        cfg = config_with("dev", {"vector_store": {"backend": backend}}).get("dev")
        store = vector_store_for(stack, "Store", env_config=cfg, key=key, network=network, removal_policy=RemovalPolicy.DESTROY)
        assert isinstance(store, cls) and store.backend == backend


def test_aurora_refuses_a_space_it_does_not_index():
    stack, key, network, *_ = scaffold()
    cfg = config_with("dev", {"vector_store": {"backend": "aurora-pgvector", "space": "l2"}}).get("dev")
    with pytest.raises(ConfigError, match="vector_store.space"):
        vector_store_for(stack, "Store", env_config=cfg, key=key, network=network, removal_policy=RemovalPolicy.DESTROY)


def test_an_existing_collection_can_be_imported_and_granted():
    stack, key, network, reader, _ = scaffold()
    store = OpenSearchVectorStore.from_collection_attributes(
        stack, "Existing", collection_name="shared-rag",
        collection_arn="arn:aws:aoss:eu-west-1:123456789012:collection/abc123", collection_endpoint="https://abc123.eu-west-1.aoss.amazonaws.com",
        dimension=1024)
    store.grant_read(reader)
    template = Template.from_stack(stack)
    (policy,) = policies(template, "data")
    assert policy[0]["Principal"] == [f"<ref:{stack.get_logical_id(reader.role.node.default_child)}>"]
    assert policy[0]["Rules"][0]["Resource"] == ["index/shared-rag/*"]
    template.resource_count_is("AWS::OpenSearchServerless::Collection", 0)
    assert store.connection_environment()["AOSS_ENDPOINT"] == "https://abc123.eu-west-1.aoss.amazonaws.com"


def test_an_existing_kendra_index_is_granted_by_id():
    stack, key, network, reader, _ = scaffold()
    store = KendraRetriever.from_index_id(stack, "Existing", "0123abcd-4567-89ef-0123-456789abcdef")
    store.grant_read(reader)
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Kendra::Index", 0)
    policy = template.to_json()["Resources"][stack.get_logical_id(reader.role.node.find_child("DefaultPolicy").node.default_child)]
    stmt = next(s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "kendra:Retrieve" in s["Action"])
    assert flat(stmt["Resource"]).endswith(":index/0123abcd-4567-89ef-0123-456789abcdef")
    assert store.connection_environment() == {"VECTOR_STORE_BACKEND": "kendra", "KENDRA_INDEX_ID": "0123abcd-4567-89ef-0123-456789abcdef"}


def test_metrics_name_this_collection_and_cluster(aoss, aurora):
    stack, store, *_ = aoss
    metric = store.metric_search_latency()
    assert metric.namespace == "AWS/AOSS" and metric.metric_name == "SearchRequestLatency"
    assert metric.dimensions["CollectionName"] == "team-rag"
    assert store.metric_ingestion_errors().statistic == "Sum"
    cluster_metric = aurora[2].metric_serverless_capacity()
    assert cluster_metric.namespace == "AWS/RDS" and cluster_metric.metric_name == "ServerlessDatabaseCapacity"
