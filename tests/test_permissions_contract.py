"""Permissions contract: every AWS call the runtime makes is allowed by the role it runs as.

The runtime tests (tests/lambdas) run once in a child pytest with the recorder plugin, which logs
each botocore operation and the function it was made for; every call is mapped to its IAM
action(s) and resource ARN and evaluated against that function's role in the synthesized
templates of every environment. SageMaker pipelines: the pipeline role can start each step's
job and pass its role, and the job role can read each S3 input and write each output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT
from tests.iam_contract.actions import required
from tests.iam_contract.contract import DeployedFunction, check_calls, check_pipelines, deployed_functions, renamer
from tests.iam_contract.policy import RolePolicy, role_policy
from tests.iam_contract.templates import ACCOUNT, EXTRA_STAGES, Assembly, synthesize

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("permissions-contract")]

# Names the runtime tests give resources that the functions receive through these variables
# (tests that build Settings directly rather than through the environment).
# Keys are IAM-style globs over the test's value, values the variable (or custom-resource property).
ALIASES = {
    "jobs": "JOBS_TABLE",
    "prompts": "PROMPT_TABLE_NAME",
    "embedder": "EMBEDDING_ENDPOINT_NAME",
    "llm-*": "LLM_ENDPOINT_NAME",
    "arn:aws:secretsmanager:*:secret:rag/*": "SecretArn",
    "arn:aws:iam::*:role/labeling": "LABELING_ROLE_ARN",
    "arn:aws:iam::*:role/a2i": "RoleArn",
    "decisions": "DECISIONS_TABLE",
    "*interactions": "INTERACTIONS_TABLE",
    "arn:aws:sns:*:alerts": "TOPIC_ARN",
    "llmops-*-ft-*": "PIPELINES[0]",
}
# Function folder -> why its recorded calls cannot yet be mapped onto its role (recorded, not checked).
# Each entry is a gap to close; empty since a direct runtime call counts for the test's own capability
# (tests/iam_contract/recorder.py), so data prep's tests no longer land on human_review_results.
UNMAPPED: dict[str, str] = {}
# Services a function calls only when its configuration selects them (variable -> values):
# a deployment configured otherwise is not asked for their permissions.
SWITCHES = {
    "bedrock-runtime": {"LLM_PROVIDER": ("bedrock",), "EMBEDDING_PROVIDER": ("bedrock",)},
    "sagemaker-runtime": {"LLM_PROVIDER": ("sagemaker",), "EMBEDDING_PROVIDER": ("sagemaker",)},
    "kendra": {"VECTOR_STORE_BACKEND": ("kendra",)},
}
# Functions that make no AWS API call through botocore (pure transforms, or PostgreSQL/OpenSearch
# clients): the contract has nothing to record for them.
NO_BOTOCORE_CALLS = {"data_prep_qa_pre", "data_prep_qa_post", "rag_vector_index"}


@pytest.fixture(scope="session")  # once per worker even when xdist interleaves other modules
def assemblies(tmp_path_factory) -> dict[str, Assembly]:
    return synthesize(tmp_path_factory.mktemp("contract-cdk.out"))


@pytest.fixture(scope="session")  # once per worker even when xdist interleaves other modules
def records(tmp_path_factory) -> list[dict]:
    workdir = tmp_path_factory.mktemp("contract")
    target = workdir / "calls.jsonl"
    env = {**os.environ, "IAM_CONTRACT_RECORD": str(target)}
    result = subprocess.run(
        # Its own basetemp: the child never prunes the temporary directories of this run.
        [sys.executable, "-m", "pytest", "tests/lambdas", "-q", "-p", "no:cacheprovider",
         "-p", "tests.iam_contract.recorder", f"--basetemp={workdir / 'runtime-tests'}"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, f"runtime tests failed under the recorder:\n{result.stdout[-4000:]}"
    return [json.loads(line) for line in target.read_text().splitlines()]


@pytest.fixture(scope="session")  # once per worker even when xdist interleaves other modules
def functions(assemblies) -> list[DeployedFunction]:
    return [f for stage, assembly in assemblies.items() for f in deployed_functions(assembly, stage)]


def test_every_recorded_call_is_allowed_by_the_functions_role(records, functions):
    checked = [f for f in functions if f.folder not in UNMAPPED]
    missing, notes, checks = check_calls(checked, records, ALIASES, SWITCHES)
    assert checks > 100, f"only {checks} checks: the recorder saw too few calls"
    assert not missing, "missing permissions:\n" + "\n".join(sorted({str(m) for m in missing}))


def test_every_deployed_function_has_its_calls_recorded(records, functions):
    recorded = {f for r in records for f in r["functions"]}
    deployed = {f.folder for f in functions}
    assert deployed - recorded - NO_BOTOCORE_CALLS == set(), "functions whose AWS calls no runtime test exercises"
    assert not recorded - deployed, "recorded calls for functions no template deploys"


def test_calls_count_for_the_function_whose_tests_make_them(records):
    """human_review_results bundles data prep: data prep's own tests of the dataset writer are not its calls."""
    results = [r for r in records if "human_review_results" in r["functions"]]
    assert results, "no recorded call of human_review_results"
    assert all(r["environ"].get("REVIEW_DATASET") for r in results), "a call of another capability's test counted for it"
    publishers = {f for r in records if r["operation"] == "PutObject" and "/data.jsonl" in str(r["params"].get("Key"))
                  for f in r["functions"]}
    assert "human_review_results" in publishers and any(f.startswith("data_prep_") for f in publishers)


def test_pipeline_role_passes_step_roles_and_jobs_reach_their_data(assemblies):
    total = 0
    for stage, assembly in assemblies.items():
        for template in assembly:
            failures, checks = check_pipelines(template)
            total += checks
            assert not failures, f"{stage}: " + "\n".join(failures)
    assert total > 20


# --- self-tests: the evaluator denies what is not granted ------------------------------------
def _function(functions, folder: str, stage: str = "dev") -> DeployedFunction:
    return next(f for f in functions if f.folder == folder and f.stage == stage)


def test_removing_the_granting_statement_makes_the_contract_fail(records, functions):
    function = _function(functions, "fine_tuning_record_approval")
    record = next(r for r in records if r["operation"] == "PutParameter" and "fine_tuning_record_approval" in r["functions"])
    rename = renamer(function, record["environ"], ALIASES)
    (need,) = required(record, region=function.template.region, account=function.template.account, rename=rename)
    decision = function.policy.evaluate(need.action, need.resource)
    assert decision.allowed and decision.by is not None
    stripped = function.policy.without(decision.by.source, decision.by.sid)
    reduced = DeployedFunction(function.folder, function.stage, function.template, function.logical_id,
                               stripped, function.environment)
    missing, _, _ = check_calls([reduced], [record], ALIASES)
    assert [str(m) for m in missing] == [
        f"{reduced.label}: ssm:PutParameter on {need.resource} (for ssm.PutParameter) is not allowed"]


def test_pipeline_check_fails_without_pass_role(assemblies):
    template = next(t for t in assemblies["dev"] if t.name.endswith("fine-tuning"))
    role = next(lid for lid, r in template.of_type("AWS::IAM::Role") if lid.startswith("ExecutionRole"))
    policy = next(lid for lid, p in template.of_type("AWS::IAM::Policy")
                  if {"Ref": role} in p["Properties"].get("Roles", []) and "DefaultPolicy" in lid)
    statements = template.body["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]
    kept = [s for s in statements if s.get("Sid") != "PassRoleToJobs"]
    assert len(kept) == len(statements) - 1
    template.body["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"] = kept
    try:
        failures, _ = check_pipelines(template)
    finally:
        template.body["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"] = statements
    assert failures and all("iam:PassRole" in f for f in failures)


def _policy(*statements) -> RolePolicy:
    from tests.iam_contract.policy import Statement

    return RolePolicy("Role", [Statement(s.get("Effect", "Allow"), tuple(s.get("Action", ())), tuple(s.get("NotAction", ())),
                                         tuple(s.get("Resource", ())), (), s.get("Condition"), s.get("Sid", ""), "P")
                               for s in statements])


def test_evaluator_wildcards_denies_and_conditions():
    policy = _policy(
        {"Action": ["s3:Get*"], "Resource": ["arn:aws:s3:::b/curated/*"]},
        {"Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::b/*"]},
        {"Effect": "Deny", "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::b/raw/*"]},
        {"Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::b"], "Condition": {"StringLike": {"s3:prefix": ["curated/*"]}}},
    )
    assert policy.evaluate("s3:GetObject", "arn:aws:s3:::b/curated/x.json").allowed
    assert not policy.evaluate("s3:GetObject", "arn:aws:s3:::b/raw/x.json").allowed
    assert not policy.evaluate("s3:getobject", "arn:aws:s3:::b/curated").allowed  # the prefix itself is not an object under it
    assert policy.evaluate("s3:PutObject", "arn:aws:s3:::b/curated/x").allowed
    assert not policy.evaluate("s3:PutObject", "arn:aws:s3:::b/raw/x").allowed  # explicit Deny wins
    listed = policy.evaluate("s3:ListBucket", "arn:aws:s3:::b")
    assert listed.allowed and "s3:prefix" in listed.notes[0]
    assert not policy.evaluate("s3:ListBucket", "arn:aws:s3:::other").allowed


def test_template_intrinsics_resolve_to_matching_arns(assemblies):
    template = next(t for t in assemblies["dev"] if t.name.endswith("data-prep"))
    table = next(lid for lid, _ in template.of_type("AWS::DynamoDB::Table"))
    assert template.resolve({"Ref": table}) == table
    assert template.resolve({"Fn::GetAtt": [table, "Arn"]}) == f"arn:aws:dynamodb:{template.region}:{ACCOUNT}:table/{table}"
    assert template.resolve({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::x"]]}) == "arn:aws:s3:::x"
    assert template.resolve({"Fn::Sub": ["${A}-${AWS::AccountId}", {"A": "a"}]}) == f"a-{ACCOUNT}"
    key_arn = template.resolve({"Fn::ImportValue": next(iter(
        v for v in _imports(template.body)))})
    assert key_arn.startswith("arn:aws:")


def _imports(node):
    if isinstance(node, dict):
        if "Fn::ImportValue" in node and isinstance(node["Fn::ImportValue"], str):
            yield node["Fn::ImportValue"]
        for v in node.values():
            yield from _imports(v)
    elif isinstance(node, list):
        for v in node:
            yield from _imports(v)


def test_ground_truth_role_can_run_labeling_and_automated_labeling(assemblies):
    """What Ground Truth does as the labeling role (SageMaker docs: execution role for labeling jobs)."""
    for stage, assembly in assemblies.items():
        if stage in EXTRA_STAGES:  # the judge-only stage has no data prep
            continue
        template = next(t for t in assembly if t.name.endswith("data-prep"))
        role = next(lid for lid, _ in template.of_type("AWS::IAM::Role") if "GroundTruthRole" in lid)
        policy = role_policy(template, role)
        region, account = template.region, template.account
        role_arn = template.get_att(role, "Arn")
        artifacts = next(v for v in template.resolve(_labeling_env(template)).values() if "-artifacts-" in str(v))
        needs = [
            ("iam:PassRole", role_arn),
            ("sagemaker:CreateTrainingJob", f"arn:aws:sagemaker:{region}:{account}:training-job/job-auto-1"),
            ("sagemaker:CreateTransformJob", f"arn:aws:sagemaker:{region}:{account}:transform-job/job-auto-1"),
            ("sagemaker:CreateModel", f"arn:aws:sagemaker:{region}:{account}:model/job-auto-1"),
            ("logs:PutLogEvents", f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/LabelingJobs:log-stream:job/x"),
            ("logs:CreateLogStream", f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/TrainingJobs:log-stream:x"),
            ("cloudwatch:PutMetricData", "*"),
            ("s3:GetObject", f"arn:aws:s3:::{artifacts}/labeling/faq/input.manifest"),
            ("s3:PutObject", f"arn:aws:s3:::{artifacts}/labeling/faq/output/x.json"),
        ]
        missing = [f"{a} on {r}" for a, r in needs if not policy.evaluate(a, r).allowed]
        assert not missing, f"{stage}: Ground Truth role lacks " + ", ".join(missing)


def _labeling_env(template):
    return next(r["Properties"]["Environment"]["Variables"] for _, r in template.of_type("AWS::Lambda::Function")
                if r["Properties"].get("Handler", "").startswith("lambdas.data_prep_labeling."))
