"""Synthesized templates with CloudFormation intrinsics resolved to placeholder strings.

One placeholder account and region for every stack, so an ARN a function builds from an
environment variable and the ARN a policy grants come out as the same string. A resource's
``Ref`` and ``GetAtt`` become the name/ARN that resource type really returns, built from its
physical name when the template sets one and from its logical id otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"
PARTITION = "aws"

# Resource type -> (property holding its physical name, lower-case the fallback name).
_NAME_PROPERTY = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SSM::Parameter": "Name",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::SageMaker::Pipeline": "PipelineName",
    "AWS::SageMaker::Workteam": "WorkteamName",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName",
    "AWS::Events::EventBus": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Kendra::Index": "Name",
}


@dataclass
class Template:
    """One stack's template and the assembly it belongs to (for Fn::ImportValue)."""

    name: str
    body: dict[str, Any]
    region: str
    assembly: "Assembly" = field(repr=False)
    account: str = ACCOUNT  # the stage's account when the config names one, else the placeholder

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body.get("Resources", {})

    def of_type(self, cfn_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource.get("Type") == cfn_type:
                yield logical_id, resource

    # --- intrinsic resolution ------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic replaced by its placeholder string (lists/dicts kept)."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if fn == "Fn::Join":
                separator, parts = arg
                return separator.join(_text(self.resolve(p)) for p in self.resolve(parts))
            if fn == "Fn::Sub":
                return self.sub(arg)
            if fn == "Fn::ImportValue":
                return self.assembly.export(self.resolve(arg))
            if fn == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if fn == "Fn::Split":
                separator, text = arg
                return _text(self.resolve(text)).split(separator)
            if fn == "Fn::If":  # conditions are not evaluated: the "true" branch stands for both
                return self.resolve(arg[1])
            if fn == "Fn::GetAZs":
                return [f"{self.region}a", f"{self.region}b", f"{self.region}c"]
        return {k: self.resolve(v) for k, v in value.items()}

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        variables = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return _text(self.get_att(logical_id, attribute))
            return _text(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Partition": PARTITION, "AWS::AccountId": self.account, "AWS::Region": self.region,
            "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": self.name, "AWS::NoValue": None,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{self.region}:{self.account}:stack/{self.name}/id",
        }
        if name in pseudo:
            return pseudo[name]
        parameters = self.body.get("Parameters", {})
        if name in parameters:
            return _text(parameters[name].get("Default", name))
        resource = self.resources.get(name)
        if resource is None:
            return name
        cfn_type, props = resource["Type"], resource.get("Properties", {})
        physical = self.physical_name(name)
        region, arn_head = self.region, f"arn:{PARTITION}"
        by_type = {
            "AWS::SQS::Queue": f"https://sqs.{region}.amazonaws.com/{self.account}/{physical}",
            "AWS::SNS::Topic": f"{arn_head}:sns:{region}:{self.account}:{physical}",
            "AWS::StepFunctions::StateMachine": f"{arn_head}:states:{region}:{self.account}:stateMachine:{physical}",
            "AWS::SecretsManager::Secret": f"{arn_head}:secretsmanager:{region}:{self.account}:secret:{physical}",
            "AWS::SageMaker::Workteam": f"{arn_head}:sagemaker:{region}:{self.account}:workteam/private-crowd/{physical}",
            "AWS::SageMaker::Pipeline": physical,
            "AWS::IAM::ManagedPolicy": f"{arn_head}:iam::{self.account}:policy/{physical}",
        }
        if cfn_type == "AWS::SecretsManager::SecretTargetAttachment":
            return self.resolve(props.get("SecretId"))  # its Ref is the secret's ARN
        return by_type.get(cfn_type, physical)

    def physical_name(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        prop = _NAME_PROPERTY.get(resource["Type"])
        value = resource.get("Properties", {}).get(prop) if prop else None
        return _text(self.resolve(value)) if value is not None else logical_id

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self.resources.get(logical_id)
        if resource is None:
            return f"{logical_id}.{attribute}"
        cfn_type = resource["Type"]
        name = self.physical_name(logical_id)
        region, head = self.region, f"arn:{PARTITION}"
        arns = {
            "AWS::S3::Bucket": f"{head}:s3:::{name}",
            "AWS::DynamoDB::Table": f"{head}:dynamodb:{region}:{self.account}:table/{name}",
            "AWS::SQS::Queue": f"{head}:sqs:{region}:{self.account}:{name}",
            "AWS::SNS::Topic": f"{head}:sns:{region}:{self.account}:{name}",
            "AWS::Lambda::Function": f"{head}:lambda:{region}:{self.account}:function:{name}",
            "AWS::IAM::Role": f"{head}:iam::{self.account}:role/{name}",
            "AWS::KMS::Key": f"{head}:kms:{region}:{self.account}:key/{name}",
            "AWS::StepFunctions::StateMachine": f"{head}:states:{region}:{self.account}:stateMachine:{name}",
            "AWS::Logs::LogGroup": f"{head}:logs:{region}:{self.account}:log-group:{name}:*",
            "AWS::SageMaker::Workteam": f"{head}:sagemaker:{region}:{self.account}:workteam/private-crowd/{name}",
            "AWS::Kendra::Index": f"{head}:kendra:{region}:{self.account}:index/{logical_id}",
            "AWS::Events::EventBus": f"{head}:events:{region}:{self.account}:event-bus/{name}",
            "AWS::Events::Rule": f"{head}:events:{region}:{self.account}:rule/{name}",
            "AWS::SageMaker::MlflowTrackingServer": f"{head}:sagemaker:{region}:{self.account}:mlflow-tracking-server/{name}",
        }
        specific = {
            ("AWS::SQS::Queue", "QueueUrl"): self.ref(logical_id),
            ("AWS::SQS::Queue", "QueueName"): name,
            ("AWS::SNS::Topic", "TopicArn"): self.ref(logical_id),
            ("AWS::SNS::Topic", "TopicName"): name,
            ("AWS::S3::Bucket", "DomainName"): f"{name}.s3.amazonaws.com",
            ("AWS::KMS::Key", "KeyId"): name,
            ("AWS::Kendra::Index", "Id"): logical_id,
            ("AWS::SageMaker::Workteam", "WorkteamName"): name,
        }
        if (cfn_type, attribute) in specific:
            return specific[(cfn_type, attribute)]
        if attribute.endswith("Arn") and cfn_type in arns:
            return arns[cfn_type]
        return f"{logical_id}.{attribute}"


class Assembly:
    """Every template of one cloud-assembly stage directory (``assembly-dev``)."""

    def __init__(self, directory: Path) -> None:
        manifest = json.loads((directory / "manifest.json").read_text())
        self.templates: dict[str, Template] = {}
        for artifact in manifest["artifacts"].values():
            if artifact.get("type") != "aws:cloudformation:stack":
                continue
            props = artifact["properties"]
            account, region = artifact.get("environment", "aws://unknown/us-east-1")[len("aws://"):].split("/", 1)
            account = account if account.isdigit() else ACCOUNT
            region = "us-east-1" if region.startswith("unknown") else region
            body = json.loads((directory / props["templateFile"]).read_text())
            name = props.get("stackName") or props["templateFile"]
            self.templates[name] = Template(name, body, region, self, account)

    def export(self, name: str) -> Any:
        for template in self.templates.values():
            for output in template.body.get("Outputs", {}).values():
                if template.resolve(output.get("Export", {}).get("Name")) == name:
                    return template.resolve(output["Value"])
        raise KeyError(f"no stack exports {name!r}")

    def __iter__(self) -> Iterator[Template]:
        return iter(self.templates.values())


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return "" if value is None else str(value)


def synthesize(outdir: Path) -> dict[str, Assembly]:
    """Every environment of the repo's config, bundling and cdk-nag skipped, as assemblies by stage."""
    from llmops.config import parse_config
    from llmops.stage import LlmOpsStage
    from tests.helpers import config_with, make_app, raw_config

    app = make_app(outdir=str(outdir))
    config = parse_config(raw_config())
    for name in config.environments:
        LlmOpsStage(app, config.get(name), nag=False)
    app.synth()
    assemblies = {name: Assembly(outdir / f"assembly-{name}") for name in config.environments}
    # The committed environments declare no experiment, so no stage of theirs deploys the judge job:
    # dev with one experiment (and only the foundation beside it) puts it under the same checks.
    extra = make_app(outdir=str(outdir / "with-experiments"))
    LlmOpsStage(extra, config_with("dev", EXPERIMENTS_STAGE).get("dev"), nag=False)
    extra.synth()
    assemblies[EXTRA_STAGES[0]] = Assembly(outdir / "with-experiments" / "assembly-dev")
    return assemblies


# Stages beyond the committed environments (checks that expect every capability skip them).
EXTRA_STAGES = ("dev+experiments",)
EXPERIMENTS_STAGE = {
    "capabilities": {c: False for c in ("data_prep", "prompt_catalog", "rag", "fine_tuning", "inference", "monitoring",
                                        "human_review")},
    "experiments": {"answer-v2": {
        "kind": "prompt-ab", "prompt": "rag-answer", "end": "2099-12-31",
        "arms": [{"name": "v1", "version": 1, "weight": 90}, {"name": "v2", "version": 2, "weight": 10}]}},
}
