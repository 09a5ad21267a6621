"""PromptCatalogStack: versioned prompt templates, their REST API and sync-at-deploy.

- ``PromptCatalog``: the CMK-encrypted DynamoDB table (PITR; deletion protection outside dev)
  with S3 overflow under ``prompts/`` in the foundation artifacts bucket.
- REST API (API Gateway, IAM authorisation on every method, request validation, throttling,
  CMK-encrypted access logs, a resource policy limited to this account) -> ``prompt_catalog_api``.
- Sync-at-deploy: a custom resource whose ``prompt_catalog_sync`` handler carries the repo's
  ``prompts/*.yaml`` in its bundle. Its ``PromptsHash`` property changes with the files, so a
  deploy after a prompt change runs the sync (a new version only for changed files) and a
  deploy without one does not call it at all.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aws_cdk import CfnOutput, CustomResource, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from llmops.config import REPO_ROOT, EnvironmentConfig
from llmops.constructs.core.scanner import scanner_exception
from llmops.constructs.core import PlatformFunction, api_alarms, retention_days
from llmops.constructs.prompt_catalog import PromptCatalog
from llmops.nag import acknowledge
from llmops.stacks.foundation import FoundationStack, removal_policy

PROMPTS_DIR = REPO_ROOT / "prompts"
OVERFLOW_PREFIX = "prompts/"
API_STAGE = "v1"


def prompts_hash(directory: Path = PROMPTS_DIR) -> str:
    """Digest of every prompt file's name and bytes: changes exactly when a prompt file does."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml")) if directory.is_dir() else []:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def table_name_for(env_config: EnvironmentConfig) -> str:
    """Deterministic, so other stacks and tools can find the catalog by name."""
    return f"{env_config.name_prefix}-prompt-catalog"


class PromptCatalogStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        foundation: FoundationStack,
        env_config: EnvironmentConfig,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.env_config = env_config
        key = foundation.key
        log_retention = retention_days(env_config.log_retention_days)
        self.catalog = PromptCatalog(
            self,
            "Catalog",
            key=key,
            overflow_bucket=foundation.artifacts,
            overflow_prefix=OVERFLOW_PREFIX,
            removal_policy=removal_policy(env_config),
            deletion_protection=env_config.name != "dev",
            table_name=table_name_for(env_config),
        )
        # The RAG stack takes ``prompt_catalog.catalog`` (llmops/stage.py) and calls grant_render.
        self.table = self.catalog.table
        # The only principal that may create versions: the API and the sync invoke it (no PutItem of their own).
        self.writer_function = PlatformFunction(
            self,
            "WriterFunction",
            entry="prompt_catalog_writer",
            invoked_by="the prompt catalog API and sync functions and grant_write grantees (synchronous invoke)",
            runtime_packages=["prompt_catalog"],
            key=key,
            network=foundation.network,
            environment=self.catalog.runtime_environment(),
            memory_size=1024,
            timeout=Duration.seconds(10),
            log_retention=log_retention,
            description="Prompt catalog version writer: the only creator of prompt versions (conditional create)",
        )
        self.catalog.add_version_writer(self.writer_function)
        runtime_env = {**self.catalog.runtime_environment(), **self.catalog.version_writer_environment()}

        self.api_function = PlatformFunction(
            self,
            "ApiFunction",
            entry="prompt_catalog_api",
            invoked_by="the prompt catalog REST API (API Gateway proxy integration)",
            runtime_packages=["prompt_catalog"],
            key=key,
            network=foundation.network,
            environment=runtime_env,
            # More memory is more CPU: it shortens the cold start (LangChain core and pydantic imports).
            memory_size=1024,
            timeout=Duration.seconds(15),
            log_retention=log_retention,
            description="Prompt catalog REST API: versions, aliases, diff, render",
        )
        self.catalog.grant_write(self.api_function.role)
        self._reach_writer(self.api_function)
        self.api = self._api(key, log_retention)
        foundation.alarm_action(*api_alarms(self, "CatalogApi", self.api, [self.api_function.function]))

        self.sync_function = PlatformFunction(
            self,
            "SyncFunction",
            entry="prompt_catalog_sync",
            invoked_by="the custom-resource provider framework (synchronous invoke)",
            runtime_packages=["prompt_catalog"],
            extra_files=("prompts",),
            key=key,
            network=foundation.network,
            environment=runtime_env,
            timeout=Duration.minutes(5),
            log_retention=log_retention,
            description="Sync-at-deploy of prompts/*.yaml into the prompt catalog (idempotent)",
        )
        self.catalog.grant_write(self.sync_function.role)
        self._reach_writer(self.sync_function)
        from llmops.constructs.core.custom_resource import custom_resource_provider

        provider = custom_resource_provider(self, "SyncProvider", on_event=self.sync_function, key=key, log_retention=log_retention)
        self.sync = CustomResource(
            self,
            "PromptSync",
            service_token=provider.service_token,
            resource_type="Custom::PromptSync",
            properties={"PromptsHash": prompts_hash(), "TableName": self.catalog.table_name},
        )
        # The sync must not run before its role may write to the table.
        self.sync.node.add_dependency(self.sync_function.role)

        CfnOutput(self, "TableName", value=self.catalog.table_name)
        CfnOutput(self, "ApiUrl", value=self.api.url)

    @staticmethod
    def _reach_writer(function: PlatformFunction) -> None:
        # From the isolated subnets a function reaches the Lambda API only through its interface endpoint.
        if function.network is not None:
            function.network.add_interface_endpoint("lambda")

    def _api(self, key, log_retention: logs.RetentionDays) -> apigw.RestApi:
        access_logs = logs.LogGroup(self, "ApiAccessLogs", encryption_key=key, retention=log_retention)
        api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{self.env_config.name_prefix}-prompt-catalog",
            description="Prompt catalog (IAM-signed requests from this account only)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=False,
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        principals=[iam.AccountRootPrincipal()],
                        actions=["execute-api:Invoke"],
                        resources=["execute-api:/*"],
                    )
                ]
            ),
            deploy_options=apigw.StageOptions(
                stage_name=API_STAGE,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=True,
                ),
                throttling_rate_limit=50,
                throttling_burst_limit=100,
                tracing_enabled=True,
            ),
        )
        scanner_exception(api.deployment_stage, "api-cache",
                          "Prompt aliases move on every promotion; the prompt client already caches per process for "
                          "its TTL, so a stage cache would add a second staleness window and an hourly cost.")
        body_validator = api.add_request_validator("BodyValidator", validate_request_body=True, validate_request_parameters=True)
        params_validator = api.add_request_validator("ParamsValidator", validate_request_body=False, validate_request_parameters=True)
        integration = apigw.LambdaIntegration(self.api_function.function, proxy=True, allow_test_invoke=False)
        models = _request_models(api)

        def method(resource: apigw.IResource, verb: str, model: str | None = None, query: tuple[str, ...] = ()) -> apigw.Method:
            return resource.add_method(
                verb,
                integration,
                authorization_type=apigw.AuthorizationType.IAM,
                request_validator=body_validator if model else params_validator,
                request_models={"application/json": models[model]} if model else None,
                request_parameters={f"method.request.querystring.{q}": True for q in query} or None,
            )

        prompts = api.root.add_resource("prompts")
        method(prompts, "GET")
        prompt = prompts.add_resource("{prompt_id}")
        method(prompt, "GET")
        versions = prompt.add_resource("versions")
        method(versions, "GET")
        method(versions, "POST", "CreateVersion")
        method(versions.add_resource("{version}"), "GET")
        alias = prompt.add_resource("aliases").add_resource("{alias}")
        method(alias, "GET")
        method(alias, "PUT", "MoveAlias")
        method(prompt.add_resource("diff"), "GET", query=("from", "to"))
        method(prompt.add_resource("render"), "POST", "Render")

        for finding, reason in (
            ("AwsSolutions-APIG3", "The API accepts only SigV4-signed IAM callers of this account and is throttled per stage; "
                                   "a WAF web ACL is an account-level choice, attach one with WebAclAssociation if required."),
            ("AwsSolutions-APIG6", "Execution logging needs the account-wide API Gateway CloudWatch role, which the "
                                   "platform does not own; access logs of every request go to a CMK-encrypted group."),
            ("AwsSolutions-COG4", "Callers are IAM principals (SigV4), not Cognito users: authorization type is AWS_IAM."),
        ):
            acknowledge(api, finding, reason)
        return api

    def grant_api_invoke(self, grantee: iam.IGrantable, *, write: bool = False) -> iam.Grant:
        """Let a principal call the API: reads and renders, or (``write``) every method."""
        stage = self.api.deployment_stage.stage_name
        calls = [("GET", "/prompts"), ("GET", "/prompts/*"), ("POST", "/prompts/*/render")]
        if write:
            calls += [("POST", "/prompts/*/versions"), ("PUT", "/prompts/*/aliases/*")]
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["execute-api:Invoke"], resource_arns=[self.api.arn_for_execute_api(m, p, stage) for m, p in calls]
        )


def _request_models(api: apigw.RestApi) -> dict[str, apigw.Model]:
    """Shallow JSON schemas: API Gateway rejects malformed bodies before the Lambda runs;
    the handler still validates every field and answers with the problems it finds."""
    obj, string, integer = apigw.JsonSchemaType.OBJECT, apigw.JsonSchemaType.STRING, apigw.JsonSchemaType.INTEGER
    target = apigw.JsonSchema(
        type=obj, required=["version"], additional_properties=False,
        properties={"version": apigw.JsonSchema(type=integer, minimum=1), "weight": apigw.JsonSchema(type=integer, minimum=1, maximum=100)},
    )
    schemas = {
        "CreateVersion": apigw.JsonSchema(
            schema=apigw.JsonSchemaVersion.DRAFT4, type=obj, required=["content"], additional_properties=False,
            properties={
                "content": apigw.JsonSchema(type=obj),
                "change_note": apigw.JsonSchema(type=string, max_length=2000),
                "description": apigw.JsonSchema(type=string, max_length=2000),
                "owner": apigw.JsonSchema(type=string, max_length=256),
                "tags": apigw.JsonSchema(type=apigw.JsonSchemaType.ARRAY, max_items=50, items=apigw.JsonSchema(type=string)),
                "only_if_changed": apigw.JsonSchema(type=apigw.JsonSchemaType.BOOLEAN),
            },
        ),
        "MoveAlias": apigw.JsonSchema(
            schema=apigw.JsonSchemaVersion.DRAFT4, type=obj, required=["targets", "expected_revision"], additional_properties=False,
            properties={
                "targets": apigw.JsonSchema(type=apigw.JsonSchemaType.ARRAY, min_items=1, max_items=2, items=target),
                "expected_revision": apigw.JsonSchema(type=integer, minimum=0),
            },
        ),
        "Render": apigw.JsonSchema(
            schema=apigw.JsonSchemaVersion.DRAFT4, type=obj, additional_properties=False,
            properties={
                "variables": apigw.JsonSchema(type=obj),
                "version": apigw.JsonSchema(type=integer, minimum=1),
                "alias": apigw.JsonSchema(type=string, pattern="^[a-z][a-z0-9_-]{0,63}$"),
            },
        ),
    }
    return {
        name: api.add_model(f"{name}Model", model_name=f"{name}Request", content_type="application/json", schema=schema)
        for name, schema in schemas.items()
    }
