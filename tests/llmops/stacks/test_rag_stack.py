"""RagStack template assertions for both backends: ingestion glue, IAM-only API, least-privilege grants."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmops.config import ConfigError
from llmops.stacks.rag import check_rag_config
from tests.helpers import config_with, synth_stage, template_of

ONLY_RAG = {"capabilities": {"data_prep": False, "prompt_catalog": False, "fine_tuning": False, "human_review": False}}


def stage(env: str, **overrides):
    return synth_stage(env, {**ONLY_RAG, **overrides})


@pytest.fixture(scope="module")
def dev():  # aurora-pgvector (the dev default)
    return template_of(stage("dev").rag)


@pytest.fixture(scope="module")
def staging():  # opensearch-serverless
    return template_of(stage("staging").rag)


def functions(template):
    return {r["Properties"]["Handler"]: r for r in template.find_resources("AWS::Lambda::Function").values()
            if "Handler" in r["Properties"] and r["Properties"]["Handler"].startswith("lambdas.")}


def statements(template):
    for policy in template.find_resources("AWS::IAM::Policy").values():
        yield from policy["Properties"]["PolicyDocument"]["Statement"]


def as_list(value):
    return value if isinstance(value, list) else [value]


def test_backends_follow_the_config(dev, staging):
    dev.resource_count_is("AWS::RDS::DBCluster", 1)
    dev.resource_count_is("AWS::OpenSearchServerless::Collection", 0)
    staging.resource_count_is("AWS::OpenSearchServerless::Collection", 1)
    staging.resource_count_is("AWS::RDS::DBCluster", 0)


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_eventbridge_rule_sends_uploads_and_curated_events_to_the_queue(env, dev, staging):
    template = {"dev": dev, "staging": staging}[env]
    rule = next(iter(template.find_resources("AWS::Events::Rule").values()))["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created", "Object Deleted"]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "uploads/"}, {"prefix": "curated/"}]
    assert pattern["detail"]["bucket"]["name"]
    (target,) = rule["Targets"]
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 8


def test_queues_are_cmk_encrypted_with_a_dead_letter_queue(dev):
    queues = dev.find_resources("AWS::SQS::Queue")
    # Ingest queue, its dead-letter queue, and the schema provider framework's dead-letter queue.
    assert len(queues) == 3 and any(k.startswith("VectorStoreSchemaProviderDeadLetterQueue") for k in queues)
    for queue in queues.values():
        assert "KmsMasterKeyId" in queue["Properties"]
    redriven = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    assert len(redriven) == 1 and redriven[0]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 3
    dev.has_resource_properties("AWS::SQS::QueuePolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}})


def test_ingest_function_reports_partial_batch_failures(dev):
    dev.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "FunctionResponseTypes": ["ReportBatchItemFailures"], "BatchSize": 3,
        "ScalingConfig": {"MaximumConcurrency": 5}})


def test_ingest_is_sized_for_the_largest_document_it_accepts(dev):
    from lambdas.runtime.rag.loaders import DEFAULT_MAX_DOCUMENT_BYTES
    from llmops.stacks.rag import INGEST_BATCH_SIZE

    ingest = functions(dev)["lambdas.rag_ingest.handler.handler"]["Properties"]
    # Measured (docs/benchmarks.md): 50 MB of text ~ 320 MB peak + ~230 MB of 1024-d float32 vectors.
    assert DEFAULT_MAX_DOCUMENT_BYTES == 50 * 1024 * 1024 and ingest["MemorySize"] >= 2 * (320 + 230)
    assert ingest["Timeout"] == 900
    queue = next(q for q in dev.find_resources("AWS::SQS::Queue").values()
                 if q["Properties"].get("RedrivePolicy"))["Properties"]
    assert queue["VisibilityTimeout"] == 6 * ingest["Timeout"]
    # Worst case per document at the stated rates: ~80 s chunking + embedding of ~55k chunks.
    assert INGEST_BATCH_SIZE == {"sagemaker": 3, "bedrock": 1}


@pytest.mark.parametrize("env,backend_vars", [
    ("dev", {"VECTOR_STORE_BACKEND", "PG_SECRET_ARN", "PG_DATABASE", "PG_TABLE"}),
    ("staging", {"VECTOR_STORE_BACKEND", "AOSS_ENDPOINT", "AOSS_INDEX"}),
])
def test_function_environments_follow_the_contract(env, backend_vars, dev, staging):
    fns = functions({"dev": dev, "staging": staging}[env])
    ingest = fns["lambdas.rag_ingest.handler.handler"]["Properties"]["Environment"]["Variables"]
    query = fns["lambdas.rag_query.handler.handler"]["Properties"]["Environment"]["Variables"]
    common = backend_vars | {"EMBEDDING_PROVIDER", "EMBEDDING_ENDPOINT_NAME", "EMBEDDING_DIMENSION", "DATA_BUCKET",
                             "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"}
    assert common | {"CHUNK_SIZE", "CHUNK_OVERLAP", "QUARANTINE_PREFIX", "DLQ_URL"} <= set(ingest)
    assert common | {"LLM_PROVIDER", "LLM_ENDPOINT_NAME", "LLM_CONTAINER", "TOP_K", "MAX_QUESTION_CHARS",
                     "PROMPT_ID", "PROMPT_ALIAS"} <= set(query)
    assert ingest["QUARANTINE_PREFIX"] == "quarantine/" and query["LLM_CONTAINER"] == "djl-lmi"  # the inference stack serves LMI by default
    assert query["EMBEDDING_DIMENSION"] == "384" and query["PROMPT_ID"] == "rag-answer"


def test_every_api_method_requires_iam_and_validates_the_body(staging):
    methods = staging.find_resources("AWS::ApiGateway::Method")
    assert methods
    for method in methods.values():
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM"
    post = next(m for m in methods.values() if m["Properties"]["HttpMethod"] == "POST")["Properties"]
    assert "RequestValidatorId" in post and post["RequestModels"]["application/json"]
    staging.has_resource_properties("AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True})
    models = {m["Properties"]["Name"]: m["Properties"]["Schema"] for m in staging.find_resources("AWS::ApiGateway::Model").values()}
    model = models["QueryRequest"]
    assert model["required"] == ["question"] and model["additionalProperties"] is False
    assert model["properties"]["question"]["maxLength"] == 2000


def test_feedback_route_is_iam_authorised_validated_and_served_by_the_query_function(staging):
    from lambdas.runtime.rag import feedback

    resources = {r["Properties"]["PathPart"]: lid for lid, r in staging.find_resources("AWS::ApiGateway::Resource").items()}
    assert set(resources) == {"query", "feedback"}
    methods = {m["Properties"]["ResourceId"]["Ref"]: m["Properties"] for m in staging.find_resources("AWS::ApiGateway::Method").values()}
    query, post = methods[resources["query"]], methods[resources["feedback"]]
    assert post["HttpMethod"] == "POST" and post["AuthorizationType"] == "AWS_IAM" and "RequestValidatorId" in post
    assert post["Integration"]["Uri"] == query["Integration"]["Uri"]  # one function, two routes
    models = {m["Properties"]["Name"]: m["Properties"]["Schema"] for m in staging.find_resources("AWS::ApiGateway::Model").values()}
    schema = models["FeedbackRequest"]
    assert post["RequestModels"] == {"application/json": {"Ref": next(
        lid for lid, m in staging.find_resources("AWS::ApiGateway::Model").items() if m["Properties"]["Name"] == "FeedbackRequest")}}
    # The model and the function's own check agree on every limit.
    assert schema["additionalProperties"] is False and set(schema["properties"]) == feedback.FEEDBACK_FIELDS
    assert schema["required"] == ["interaction_id", "rating"]
    assert schema["properties"]["rating"]["enum"] == list(feedback.RATINGS)
    assert schema["properties"]["comment"]["maxLength"] == feedback.MAX_COMMENT_CHARS
    ident = schema["properties"]["interaction_id"]
    assert (ident["maxLength"], ident["pattern"]) == (feedback.MAX_ID_CHARS, feedback.ID_PATTERN)


def test_query_function_gets_the_routing_rules_only_when_human_review_is_on(dev):
    from lambdas.runtime.human_review.routing import ROUTING_ENV, RoutingRules, rules_from_json

    off = functions(dev)["lambdas.rag_query.handler.handler"]["Properties"]["Environment"]["Variables"]
    assert ROUTING_ENV not in off
    on = template_of(synth_stage("dev", {"capabilities": {"fine_tuning": False}}).rag)
    variables = functions(on)["lambdas.rag_query.handler.handler"]["Properties"]["Environment"]["Variables"]
    assert rules_from_json(variables[ROUTING_ENV]) == RoutingRules()  # config defaults = the rules' defaults


def test_api_stage_logs_throttles_and_traces(staging):
    staging.has_resource_properties("AWS::ApiGateway::Stage", {
        "StageName": "v1",
        "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.any_value()},
        "MethodSettings": Match.array_with([Match.object_like({"ThrottlingRateLimit": 20, "ThrottlingBurstLimit": 40})]),
        "TracingEnabled": True,
    })
    groups = staging.find_resources("AWS::Logs::LogGroup")
    assert groups and all("KmsKeyId" in g["Properties"] for g in groups.values())


def test_no_wildcard_actions_and_models_invoked_by_name(staging):
    actions = [a for s in statements(staging) for a in as_list(s["Action"])]
    assert not [a for a in actions if a == "*" or a.endswith(":*")]
    invoke = [s for s in statements(staging) if "sagemaker:InvokeEndpoint" in as_list(s["Action"])]
    resources = {json.dumps(s["Resource"]) for s in invoke}
    assert any("endpoint/llmops-stg-llm" in r for r in resources)
    assert any("endpoint/llmops-stg-embeddings" in r for r in resources)
    assert all("*" not in r for r in resources)


def test_data_bucket_access_is_limited_to_the_prefixes(dev):
    object_grants = {}
    for s in statements(dev):
        if any(a.startswith("s3:") and a != "s3:ListBucket" for a in as_list(s["Action"])):
            resource = json.dumps(s["Resource"])
            for prefix in ("uploads/*", "curated/*", "quarantine/*"):
                if prefix in resource:
                    object_grants.setdefault(prefix, set()).update(as_list(s["Action"]))
            assert any(p in resource for p in ("uploads/*", "curated/*", "quarantine/*")), resource
    assert "s3:GetObject" in object_grants["uploads/*"] and "s3:GetObject" in object_grants["curated/*"]
    assert object_grants["quarantine/*"] >= {"s3:PutObject"} and "s3:GetObject" not in object_grants["quarantine/*"]


def test_foundation_key_lets_eventbridge_deliver_to_encrypted_queues():
    foundation = template_of(stage("dev").foundation)
    key = next(iter(foundation.find_resources("AWS::KMS::Key").values()))
    stmt = next(s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "AllowEventBridgeToEncryptedQueues")
    assert stmt["Principal"] == {"Service": "events.amazonaws.com"}
    assert "aws:SourceAccount" in stmt["Condition"]["StringEquals"]


def test_bedrock_models_are_granted_by_model_arn():
    over = {"rag": {"embedding_provider": "bedrock", "llm_provider": "bedrock"}, "vector_store": {"dimension": 1024}}
    template = template_of(stage("staging", **over).rag)
    invoke = [s for s in statements(template) if "bedrock:InvokeModel" in as_list(s["Action"])]
    resources = " ".join(json.dumps(s["Resource"]) for s in invoke)
    assert "foundation-model/amazon.titan-embed-text-v2:0" in resources
    assert "foundation-model/amazon.nova-lite-v1:0" in resources
    query = functions(template)["lambdas.rag_query.handler.handler"]["Properties"]["Environment"]["Variables"]
    assert query["LLM_MODEL_ID"] == "amazon.nova-lite-v1:0" and query["EMBEDDING_MODEL_ID"] == "amazon.titan-embed-text-v2:0"


def test_kendra_backend_has_no_ingestion_queue():
    template = template_of(stage("staging", vector_store={"backend": "kendra"},
                                 network={"interface_endpoints": KENDRA_ENDPOINTS}, cost={"allow": ["kendra"]}).rag)
    template.resource_count_is("AWS::Kendra::Index", 1)
    template.resource_count_is("AWS::SQS::Queue", 0)
    query = functions(template)["lambdas.rag_query.handler.handler"]["Properties"]["Environment"]["Variables"]
    assert query["VECTOR_STORE_BACKEND"] == "kendra" and "KENDRA_INDEX_ID" in query


@pytest.mark.parametrize("overrides,message", [
    ({"rag": {"embedding_provider": "bedrock"}}, "vector_store.dimension: amazon.titan-embed-text-v2:0 returns 256/512/1024"),
    ({"network": {"interface_endpoints": ["sqs", "kms"]}}, "network.interface_endpoints: .* sagemaker_runtime"),
    ({"rag": {"llm_provider": "bedrock"}, "network": {"interface_endpoints": ["sqs", "kms", "sagemaker_runtime", "secrets_manager"]}},
     "need bedrock_runtime"),
])
def test_inconsistent_rag_config_fails_synth_with_the_field_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_rag_config(config_with("dev", overrides).get("dev"))


@pytest.mark.parametrize("overrides,message", [
    ({"rag": {"chunk_size": 100, "chunk_overlap": 100}}, "chunk_overlap"),
    ({"rag": {"llm_container": "openai"}}, "rag.llm_container"),
    ({"rag": {"aoss": {"public": True}}}, "rag.aoss.public: unknown field"),
    ({"rag": {"embedding_endpoint_name": "bad name!"}}, "rag.embedding_endpoint_name"),
])
def test_rag_config_errors_name_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message):
        config_with("dev", overrides)


def test_query_function_renders_from_the_prompt_catalog_when_it_is_on():
    rag_stage = synth_stage("dev", {"capabilities": {"data_prep": False, "fine_tuning": False, "human_review": False}})
    template = template_of(rag_stage.rag)
    query = functions(template)["lambdas.rag_query.handler.handler"]["Properties"]["Environment"]["Variables"]
    assert "PROMPT_TABLE_NAME" in query
    dynamo = [s for s in statements(template) if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))
              and "Interactions" not in json.dumps(s["Resource"])]  # the interaction log's own grants aside
    assert {a for s in dynamo for a in as_list(s["Action"])} == {"dynamodb:GetItem", "dynamodb:Query"}
    assert all("/index/" not in json.dumps(s["Resource"]) for s in dynamo)


def test_grant_query_allows_only_post_query_on_this_api():
    from aws_cdk import Stack
    from aws_cdk import aws_iam as iam

    from llmops.stage import LlmOpsStage
    from tests.helpers import make_app

    # A stage of its own: the cached ones are shared by other tests and must not gain a role.
    rag = LlmOpsStage(make_app(), config_with("dev", ONLY_RAG).get("dev"), nag=False).rag
    role = iam.Role(rag, "CallerForTest", assumed_by=iam.AccountRootPrincipal())
    rag.grant_query(role)
    policy = Stack.of(rag).resolve(role.node.find_child("DefaultPolicy").document.to_json())
    (stmt,) = policy["Statement"]
    assert stmt["Action"] == "execute-api:Invoke"
    api_id = Stack.of(rag).get_logical_id(rag.api.node.default_child)
    parts = stmt["Resource"]["Fn::Join"][1]
    assert {"Ref": api_id} in parts  # this API, not every API of the account
    assert flat_join(stmt["Resource"]).endswith("/<ref>/POST/query")  # its deployed stage, POST /query only


def test_grant_feedback_allows_only_post_feedback_on_this_api():
    from aws_cdk import Stack
    from aws_cdk import aws_iam as iam

    from llmops.stage import LlmOpsStage
    from tests.helpers import make_app

    rag = LlmOpsStage(make_app(), config_with("dev", ONLY_RAG).get("dev"), nag=False).rag
    role = iam.Role(rag, "FeedbackCallerForTest", assumed_by=iam.AccountRootPrincipal())
    rag.grant_feedback(role)
    (stmt,) = Stack.of(rag).resolve(role.node.find_child("DefaultPolicy").document.to_json())["Statement"]
    assert stmt["Action"] == "execute-api:Invoke"
    assert flat_join(stmt["Resource"]).endswith("/<ref>/POST/feedback")


def flat_join(value):
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return value["Fn::Join"][0].join(flat_join(v) for v in value["Fn::Join"][1])
    return "<ref>"


KENDRA_ENDPOINTS = ["kms", "sagemaker_runtime", "kendra", "cloudwatch_logs", "xray"]


def test_kendra_backend_needs_the_kendra_endpoint_at_synth():
    with pytest.raises(ConfigError, match=r"network.interface_endpoints: .*need kendra"):
        check_rag_config(config_with("staging", {"vector_store": {"backend": "kendra"},
                                                 "network": {"interface_endpoints": ["kms", "sagemaker_runtime"]}}).get("staging"))
    # No ingestion queue with Kendra: sqs is not required.
    check_rag_config(config_with("staging", {"vector_store": {"backend": "kendra"},
                                             "network": {"interface_endpoints": KENDRA_ENDPOINTS}}).get("staging"))


def test_kendra_query_function_can_reach_kendra():
    built = stage("staging", vector_store={"backend": "kendra"}, network={"interface_endpoints": KENDRA_ENDPOINTS}, cost={"allow": ["kendra"]})
    rag, foundation = template_of(built.rag), template_of(built.foundation)
    endpoints = foundation.find_resources("AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Interface"}})
    kendra = [e for e in endpoints.values() if "kendra" in json.dumps(e["Properties"]["ServiceName"])
              and "ranking" not in json.dumps(e["Properties"]["ServiceName"])]
    assert len(kendra) == 1 and kendra[0]["Properties"]["PrivateDnsEnabled"] is True
    # The endpoint admits HTTPS from the VPC, where the query function runs.
    groups = foundation.find_resources("AWS::EC2::SecurityGroup")
    endpoint_group = next(iter(as_list(kendra[0]["Properties"]["SecurityGroupIds"])))["Fn::GetAtt"][0]
    ingress = groups[endpoint_group]["Properties"]["SecurityGroupIngress"]
    assert {"CidrIp": "10.40.0.0/16", "FromPort": 443, "ToPort": 443, "IpProtocol": "tcp"}.items() <= ingress[0].items()
    query = functions(rag)["lambdas.rag_query.handler.handler"]["Properties"]
    assert query["VpcConfig"]["SubnetIds"] and query["VpcConfig"]["SecurityGroupIds"]
    retrieve = [s for s in statements(rag) if "kendra:Retrieve" in as_list(s["Action"])]
    assert len(retrieve) == 1 and "index/" in json.dumps(retrieve[0]["Resource"])


def test_query_timeouts_fit_inside_the_api_limit(dev):
    from llmops.stacks.rag import API_INTEGRATION_LIMIT_S

    query = functions(dev)["lambdas.rag_query.handler.handler"]["Properties"]
    connect = int(query["Environment"]["Variables"]["PG_CONNECT_TIMEOUT"])
    assert connect >= 16  # a resuming Aurora cluster (~15 s) still gets its connection
    assert connect + 5 <= query["Timeout"] < API_INTEGRATION_LIMIT_S  # then a 503 before the gateway gives up


def test_rag_invokes_the_inference_stacks_endpoints_unless_config_names_others():
    stage_ = stage("dev")
    assert stage_.rag.llm_construct is stage_.inference.llm and stage_.rag.embedding_construct is stage_.inference.embeddings
    assert stage_.inference in stage_.rag.dependencies
    arns = json.dumps([s["Resource"] for s in statements(template_of(stage_.rag)) if "sagemaker:InvokeEndpoint" in json.dumps(s)])
    assert "endpoint/llmops-dev-llm" in arns and "endpoint/llmops-dev-embeddings" in arns
    other = stage("dev", rag={"llm_endpoint_name": "shared-llm", "embedding_endpoint_name": "shared-emb", "llm_container": "tgi"})
    assert other.rag.llm_construct is None and other.rag.embedding_construct is None
    query = next(r for r in functions(template_of(other.rag)).values() if "LLM_ENDPOINT_NAME" in json.dumps(r))
    assert query["Properties"]["Environment"]["Variables"]["LLM_CONTAINER"] == "tgi"
    assert "endpoint/shared-llm" in json.dumps(list(statements(template_of(other.rag))))


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_interaction_log_is_an_encrypted_streamed_table_the_query_function_only_appends_to(env, dev, staging):
    template = {"dev": dev, "staging": staging}[env]
    [(logical, table)] = [(k, v) for k, v in template.find_resources("AWS::DynamoDB::Table").items()
                          if v["Properties"].get("TableName", "").endswith("-interactions")]
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "interaction_id", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert props["SSESpecification"]["SSEEnabled"] is True and "KMSMasterKeyId" in props["SSESpecification"]
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    query = functions(template)["lambdas.rag_query.handler.handler"]["Properties"]["Environment"]["Variables"]
    assert query["INTERACTIONS_TABLE"] == {"Ref": logical} and query["INTERACTION_RETENTION_DAYS"] == "30"
    writes = [s for s in statements(template)
              if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))
              and {"Fn::GetAtt": [logical, "Arn"]} in as_list(s["Resource"])]
    by_action = {a: s for s in writes for a in as_list(s["Action"])}
    assert sorted(by_action) == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    assert [as_list(s["Action"]) for s in writes if "Condition" not in s] == [["dynamodb:PutItem"]]
    # POST /feedback: the update names only the key and `feedback` and returns nothing else of the item;
    # the read (the feedback metric's prompt dimensions) sees only the prompt attributes.
    assert by_action["dynamodb:UpdateItem"]["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:Attributes": ["interaction_id", "feedback"]},
        "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE", "UPDATED_OLD", "UPDATED_NEW"]}}
    assert by_action["dynamodb:GetItem"]["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:Attributes": ["interaction_id", "prompt_id", "prompt_version"]},
        "StringEqualsIfExists": {"dynamodb:Select": ["SPECIFIC_ATTRIBUTES"]}}
    alarm = [a for a in template.find_resources("AWS::CloudWatch::Alarm").values()
             if a["Properties"].get("MetricName") == "InteractionLogFailures"]
    assert len(alarm) == 1 and alarm[0]["Properties"]["Dimensions"] == [{"Name": "service", "Value": "rag_query"}]
    assert alarm[0]["Properties"]["AlarmActions"]


_feedback_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12),
                             st.sampled_from(["up", "down", "0b9c7f3e-5d1a-4c8e", "a\n", "x" * 201]),
                             st.text(min_size=1995, max_size=2005))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(_feedback_values, st.dictionaries(st.sampled_from(["interaction_id", "rating", "comment", "extra"]),
                                                   _feedback_values)))
def test_feedback_model_and_code_agree_on_every_body(staging, payload):
    """API Gateway's model (draft 4, as deployed) and parse_feedback accept the same bodies; the code
    refuses more only where JSON Schema cannot say it (a lone surrogate or NUL, a trailing newline in the id)."""
    import jsonschema

    from lambdas.runtime.rag.feedback import InvalidFeedback, parse_feedback

    schema = next(m["Properties"]["Schema"] for m in staging.find_resources("AWS::ApiGateway::Model").values()
                  if m["Properties"]["Name"] == "FeedbackRequest")
    model_ok = jsonschema.Draft4Validator(schema).is_valid(payload)
    try:
        parse_feedback(payload)
        code_ok = True
    except InvalidFeedback:
        code_ok = False
    assert not code_ok or model_ok  # nothing the gateway refuses reaches storage through a direct invoke
    if model_ok and not code_ok:
        comment, ident = payload.get("comment") or "", payload["interaction_id"]
        assert "\x00" in comment or any(0xD800 <= ord(c) <= 0xDFFF for c in comment) or ident.endswith("\n")


def test_the_feedback_requests_name_only_what_the_query_functions_conditions_allow(dev):
    """The UpdateItem and GetItem the feedback route sends, replayed against the role's IAM conditions."""
    import boto3
    from botocore.stub import Stubber

    from lambdas.rag_query import handler as query_handler
    from lambdas.runtime.rag.feedback import Feedback, record_feedback

    conditions = {a: s["Condition"] for s in statements(dev) if "Condition" in s
                  for a in as_list(s["Action"]) if a in ("dynamodb:UpdateItem", "dynamodb:GetItem")}
    client = boto3.client("dynamodb", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    sent: list[dict] = []
    client.meta.events.register("before-parameter-build.dynamodb", lambda params, **_: sent.append(dict(params)))
    with Stubber(client) as stub:
        stub.add_response("update_item", {})
        stub.add_response("get_item", {"Item": {"interaction_id": {"S": "i"}, "prompt_id": {"S": "p"}}})
        record_feedback(client, "t", Feedback("i", "down", "no"))
        original = query_handler.dynamodb
        query_handler.dynamodb = lambda: client
        try:
            assert query_handler._prompt_of("t", "i") == ("p", "unknown")
        finally:
            query_handler.dynamodb = original
    for params, action in zip(sent, ("dynamodb:UpdateItem", "dynamodb:GetItem")):
        names = set(params["Key"]) | set(params.get("ExpressionAttributeNames", {}).values())
        for expression in (params.get("UpdateExpression", ""), params.get("ProjectionExpression", "")):
            names |= {w.strip(",") for w in expression.replace("SET ", "").split() if w[0].isalpha() and not w.startswith(":")}
        allowed = conditions[action]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
        assert names <= set(allowed), (action, names - set(allowed))
        if "ReturnValues" in params:
            assert params["ReturnValues"] in conditions[action]["StringEqualsIfExists"]["dynamodb:ReturnValues"]
