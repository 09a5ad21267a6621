"""The checks: recorded calls against function roles, pipeline steps against the pipeline role."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tests.iam_contract.actions import ANY, Required, required
from tests.iam_contract.policy import Decision, RolePolicy, matches, role_of_arn, role_policy
from tests.iam_contract.templates import Assembly, Template


@dataclass
class DeployedFunction:
    folder: str  # lambdas/<folder>/handler.py
    stage: str
    template: Template
    logical_id: str
    policy: RolePolicy
    environment: dict[str, str]

    @property
    def label(self) -> str:
        return f"{self.folder} ({self.stage}/{self.template.name}/{self.logical_id})"


def deployed_functions(assembly: Assembly, stage: str) -> Iterator[DeployedFunction]:
    for template in assembly:
        for logical_id, resource in template.of_type("AWS::Lambda::Function"):
            props = resource["Properties"]
            handler = props.get("Handler", "")
            if not (handler.startswith("lambdas.") and handler.endswith(".handler.handler")):
                continue
            role = props["Role"]["Fn::GetAtt"][0]
            env = template.resolve(props.get("Environment", {}).get("Variables", {}))
            # A custom-resource handler's configuration arrives as the resource's properties.
            env.update(_custom_resource_properties(template, logical_id))
            # JSON maps in a variable (APPROVAL_PARAMETERS) name resources too: NAME[i] is the i-th value.
            for name, value in list(env.items()):
                if isinstance(value, str) and value.startswith("{"):
                    try:
                        mapping = json.loads(value)
                    except ValueError:
                        continue
                    env.update({f"{name}[{i}]": str(v) for i, (_, v) in enumerate(sorted(mapping.items()))})
            yield DeployedFunction(handler.split(".")[1], stage, template, logical_id,
                                   role_policy(template, role), {k: str(v) for k, v in env.items()})


def _custom_resource_properties(template: Template, function_id: str) -> dict[str, Any]:
    """Properties of the custom resources served by a provider whose onEvent handler is ``function_id``."""
    arn = template.get_att(function_id, "Arn")
    providers = {lid for lid, r in template.of_type("AWS::Lambda::Function")
                 if arn in json.dumps(template.resolve(r["Properties"].get("Environment", {})))}
    tokens = {template.get_att(lid, "Arn") for lid in providers}
    found: dict[str, Any] = {}
    for _, resource in template.resources.items():
        if resource["Type"].startswith("Custom::") or resource["Type"] == "AWS::CloudFormation::CustomResource":
            props = template.resolve(resource.get("Properties", {}))
            if props.get("ServiceToken") in tokens:
                found.update({k: v for k, v in props.items() if k != "ServiceToken" and isinstance(v, str)})
    return found


# Variables every function has that name no resource.
_NOT_RESOURCES = frozenset({"PLATFORM_ENVIRONMENT"})


def renamer(function: DeployedFunction, test_environ: Mapping[str, str], aliases: Mapping[str, str],
            reference: Mapping[str, str] | None = None):
    """Maps a resource name a test used onto the one the deployed function is configured with.

    In order: an environment variable the test set to that value and the template sets too; an
    alias (test name -> the variable it stands for); the one variable whose value in ``reference``
    (the function's dev deployment) starts with the test name and a dash (``llmops-dev-data`` ->
    DATA_BUCKET -> ``llmops-stg-data-<account>-<region>`` in staging).
    """
    deployed = function.environment

    def rename(kind: str, value: str) -> str:
        if not value:
            return value
        for name, test_value in test_environ.items():
            if test_value == value and name in deployed:
                return deployed[name]
        same = [k for k, v in (reference or {}).items() if v == value and k in deployed]
        if same:  # a test that used the dev deployment's own value
            return deployed[same[0]]
        for pattern, name in aliases.items():
            if name in deployed and matches(pattern, value):
                return deployed[name]
        # Test fixtures name resources after the dev environment: match there, use the same variable here.
        prefixed = {k for k, v in (reference or deployed).items() if k not in _NOT_RESOURCES
                    and not k.startswith("POWERTOOLS_") and v.startswith(value + "-")}
        if len(prefixed) == 1 and (name := prefixed.pop()) in deployed:
            return deployed[name]
        return value

    return rename


@dataclass(frozen=True)
class Missing:
    function: str
    need: Required

    def __str__(self) -> str:
        return f"{self.function}: {self.need.action} on {self.need.resource} (for {self.need.why}) is not allowed"


def check_calls(functions: list[DeployedFunction], records: list[dict[str, Any]], aliases: Mapping[str, str],
                switches: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None) -> tuple[list[Missing], list[str], int]:
    """(missing permissions, notes, number of checks) for every recorded call of every function."""
    missing: list[Missing] = []
    notes: set[str] = set()
    checks = 0
    by_folder: dict[str, list[DeployedFunction]] = {}
    for function in functions:
        by_folder.setdefault(function.folder, []).append(function)
    reference = {folder: fs[0].environment for folder, fs in by_folder.items()}
    keys: dict[int, dict[str, str]] = {}
    seen: set[tuple[str, str, str]] = set()
    for record in records:
        for folder in record["functions"]:
            for function in by_folder.get(folder, []):
                switch = (switches or {}).get(record["service"])
                if switch and not any(function.environment.get(k) in values for k, values in switch.items()):
                    notes.add(f"{function.label}: {record['service']} is not used in this configuration ({dict(switch)})")
                    continue
                rename = renamer(function, record["environ"], aliases, reference.get(folder))
                needs = required(record, region=function.template.region, account=function.template.account, rename=rename)
                for need in needs + _key_needs(needs, keys.setdefault(id(function.template.assembly),
                                                                  encryption_keys(function.template.assembly))):
                    key = (function.label, need.action, need.resource)
                    if key in seen:
                        continue
                    seen.add(key)
                    checks += 1
                    decision = function.policy.evaluate(need.action, need.resource)
                    if need.resource == ANY and not decision.allowed:
                        # Unknown or unscoped resource: any grant of the action counts.
                        decision = _any_resource(function.policy, need.action)
                    notes.update(f"{function.label}: {n}" for n in decision.notes)
                    if not decision.allowed:
                        missing.append(Missing(function.label, need))
    return missing, sorted(notes), checks


def encryption_keys(assembly) -> dict[str, str]:
    """Bucket ARN / queue ARN -> the ARN of the KMS key that encrypts it, across the assembly's templates."""
    keys: dict[str, str] = {}
    for template in assembly:
        for logical_id, bucket in template.of_type("AWS::S3::Bucket"):
            rules = bucket.get("Properties", {}).get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
            for rule in rules:
                key = rule.get("ServerSideEncryptionByDefault", {}).get("KMSMasterKeyID")
                if key:
                    keys[template.get_att(logical_id, "Arn")] = str(template.resolve(key))
        for logical_id, queue in template.of_type("AWS::SQS::Queue"):
            key = queue.get("Properties", {}).get("KmsMasterKeyId")
            if key and not str(template.resolve(key)).startswith("alias/aws/"):
                keys[template.get_att(logical_id, "Arn")] = str(template.resolve(key))
    return keys


def _key_needs(needs: list[Required], keys: Mapping[str, str]) -> list[Required]:
    """The KMS calls S3 and SQS make with the caller's credentials for CMK-encrypted buckets and queues."""
    out: list[Required] = []
    for need in needs:
        if need.action.startswith("s3:"):
            container = need.resource.split("/", 1)[0]
            action = {"s3:GetObject": "kms:Decrypt", "s3:GetObjectVersion": "kms:Decrypt",
                      "s3:PutObject": "kms:GenerateDataKey"}.get(need.action)
        elif need.action == "sqs:SendMessage":
            container, action = need.resource, "kms:GenerateDataKey"
        else:
            continue
        if action and container in keys:
            out.append(Required(action, keys[container], f"{need.why} (CMK of {container})"))
    return out


def _any_resource(policy: RolePolicy, action: str) -> Decision:
    for s in policy.statements:
        if s.effect == "Allow" and any(matches(a, action, case_sensitive=False) for a in s.actions):
            return Decision(True, s, [f"{action}: resource unknown, granted on {list(s.resources)}"])
    return Decision(False)


# --- SageMaker pipelines -------------------------------------------------------------------
_EXECUTION = "EXECUTION"  # stands for run-time values (execution id, step outputs of unknown shape)


def pipeline_steps(template: Template) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(pipeline logical id, pipeline role ARN, parsed definition, step) for every step of every pipeline."""
    for logical_id, resource in template.of_type("AWS::SageMaker::Pipeline"):
        props = resource["Properties"]
        body = template.resolve(props["PipelineDefinition"]["PipelineDefinitionBody"])
        definition = json.loads(body)
        for step in definition.get("Steps", []):
            yield logical_id, template.resolve(props["RoleArn"]), definition, step


def _value(value: Any, definition: dict[str, Any]) -> str:
    """A pipeline expression as a string: parameters take their defaults, run-time values a placeholder."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict) and "Get" in value:
        path = value["Get"]
        if path.startswith("Parameters."):
            name = path.split(".", 1)[1]
            for parameter in definition.get("Parameters", []):
                if parameter["Name"] == name:
                    return str(parameter.get("DefaultValue", _EXECUTION))
        if path.startswith("Steps."):
            return _step_output(path, definition)
        return _EXECUTION
    if isinstance(value, dict) and "Std:Join" in value:
        join = value["Std:Join"]
        return join["On"].join(_value(v, definition) for v in join["Values"])
    return _EXECUTION


def _step_output(path: str, definition: dict[str, Any]) -> str:
    """``Steps.<name>.ProcessingOutputConfig.Outputs['x'].S3Output.S3Uri`` -> that output's S3 URI."""
    step_name = path.split(".")[1]
    for step in definition.get("Steps", []):
        if step["Name"] != step_name:
            continue
        args = step.get("Arguments", {})
        if "Outputs['" in path:
            output = path.split("Outputs['", 1)[1].split("'", 1)[0]
            for o in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
                if o["OutputName"] == output:
                    return _value(o["S3Output"]["S3Uri"], definition)
        if "ModelArtifacts" in path:
            return _value(args.get("OutputDataConfig", {}).get("S3OutputPath"), definition) + "/" + _EXECUTION
    return _EXECUTION


def step_needs(step: dict[str, Any], definition: dict[str, Any], region: str) -> tuple[str | None, list[Required]]:
    """(the job role ARN, what that role needs) for one pipeline step's S3 inputs and outputs."""
    args = step.get("Arguments", {})
    why = f"step {step['Name']}"
    reads: list[str] = []
    writes: list[str] = []
    for channel in args.get("ProcessingInputs", []):
        if "S3Input" in channel:
            reads.append(_value(channel["S3Input"]["S3Uri"], definition))
    for output in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
        writes.append(_value(output["S3Output"]["S3Uri"], definition))
    for channel in args.get("InputDataConfig", []):
        source = channel.get("DataSource", {}).get("S3DataSource")
        if source:
            reads.append(_value(source["S3Uri"], definition))
    if "OutputDataConfig" in args:
        writes.append(_value(args["OutputDataConfig"]["S3OutputPath"], definition))
    if "CheckpointConfig" in args:  # spot training resumes from its checkpoints
        uri = _value(args["CheckpointConfig"]["S3Uri"], definition)
        reads.append(uri)
        writes.append(uri)
    needs: list[Required] = []
    for uri in reads:
        bucket, key = _split(uri)
        needs.append(Required("s3:ListBucket", f"arn:aws:s3:::{bucket}", f"{why} lists {uri}"))
        needs.append(Required("s3:GetObject", f"arn:aws:s3:::{bucket}/{key.rstrip('/')}/{_EXECUTION}"
                              if key.endswith("/") else f"arn:aws:s3:::{bucket}/{key}", f"{why} reads {uri}"))
    for uri in writes:
        bucket, key = _split(uri)
        needs.append(Required("s3:PutObject", f"arn:aws:s3:::{bucket}/{key.rstrip('/')}/{_EXECUTION}", f"{why} writes {uri}"))
    for kms_field in (args.get("ProcessingOutputConfig", {}).get("KmsKeyId"), args.get("OutputDataConfig", {}).get("KmsKeyId")):
        if kms_field:
            needs.append(Required("kms:GenerateDataKey", _value(kms_field, definition), f"{why} encrypts its output"))
    return args.get("RoleArn"), needs


def _split(uri: str) -> tuple[str, str]:
    assert uri.startswith("s3://"), uri
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def check_pipelines(template: Template) -> tuple[list[str], int]:
    """Failures (as sentences) and the number of checks over every pipeline of ``template``."""
    failures: list[str] = []
    checks = 0
    for pipeline, pipeline_role_arn, definition, step in pipeline_steps(template):
        pipeline_role = role_of_arn(template, pipeline_role_arn)
        if pipeline_role is None:
            failures.append(f"pipeline {pipeline}: role {pipeline_role_arn} is not a role of {template.name}")
            continue
        pipeline_policy = role_policy(template, pipeline_role)
        job_role_arn, needs = step_needs(step, definition, template.region)
        if step.get("Type") in ("Processing", "Training"):
            kind = "processing-job" if step["Type"] == "Processing" else "training-job"
            action = "sagemaker:CreateProcessingJob" if step["Type"] == "Processing" else "sagemaker:CreateTrainingJob"
            job_arn = f"arn:aws:sagemaker:{template.region}:{template.account}:{kind}/pipelines-{_EXECUTION.lower()}-{step['Name'].lower()}"
            checks += 1
            if not pipeline_policy.evaluate(action, job_arn).allowed:
                failures.append(f"pipeline {pipeline} ({pipeline_role}): {action} on {job_arn} for step {step['Name']} is not allowed")
        if job_role_arn:
            checks += 1
            if not pipeline_policy.evaluate("iam:PassRole", job_role_arn).allowed:
                failures.append(f"pipeline {pipeline} ({pipeline_role}): iam:PassRole on {job_role_arn} "
                                f"(step {step['Name']} runs as it) is not allowed")
            job_role = role_of_arn(template, job_role_arn)
            if job_role is None:
                failures.append(f"pipeline {pipeline}: step {step['Name']} runs as {job_role_arn}, not a role of {template.name}")
                continue
            job_policy = role_policy(template, job_role)
            for need in needs + _key_needs(needs, encryption_keys(template.assembly)):
                checks += 1
                if not job_policy.evaluate(need.action, need.resource).allowed:
                    failures.append(f"pipeline {pipeline} job role {job_role}: {need.action} on {need.resource} ({need.why}) is not allowed")
    return failures, checks
