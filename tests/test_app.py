"""The whole app: every environment synthesizes with cdk-nag on and lints clean.

Synthesized once per test session (module fixture) to keep the suite fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import Stack
from aws_cdk import aws_s3 as s3

from llmops.app import build_app
from llmops.report import lint_templates, nag_violations, stacks_in
from tests.helpers import config_with, make_app

pytestmark = pytest.mark.xdist_group("synth")


@pytest.fixture(scope="module")
def assembly(tmp_path_factory) -> Path:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = make_app(outdir=str(outdir))
    build_app(app)
    app.synth()  # raises if cdk-nag reports any unacknowledged finding
    return outdir


def test_all_environments_synthesize_with_zero_nag_findings(assembly):
    stacks = stacks_in(assembly)
    assert {s.stage for s in stacks} == {"dev", "staging", "prod", "(tooling)"}  # (tooling): the delivery pipeline
    assert nag_violations(assembly) == []
    for stage in ("dev", "staging", "prod"):
        assert any(s.name == f"{stage}/Foundation" for s in stacks)


def test_cfn_lint_has_no_errors(assembly):
    errors, _warnings = lint_templates([s.template for s in stacks_in(assembly)])
    assert errors == []


def test_every_acknowledgement_names_one_finding_with_a_reason(assembly):
    for metadata in assembly.glob("assembly-*/*.metadata.json"):
        for path, entries in json.loads(metadata.read_text()).items():
            for entry in entries:
                if entry["type"] != "aws:cdk:acknowledged-rules":
                    continue
                for finding, reason in entry["data"].items():
                    rule = finding.split("::")[-1]
                    # A whole rule on a stack is not allowed: acknowledgements sit on resources.
                    assert path.count("/") >= 3, f"{finding} acknowledged on {path}"
                    assert len(reason) >= 20, f"{finding} at {path} has no specific reason"
                    if rule.startswith("AwsSolutions-IAM5"):
                        assert "[" in rule, f"{finding} at {path} acknowledges every IAM5 finding"


# Tags: tests/test_template_walks.py walks every taggable resource for all four tags.


def test_nag_fails_synth_on_a_finding(tmp_path):
    # Proof the check can fail: an unencrypted, unlogged bucket in a stage must stop synth.
    from llmops.stage import LlmOpsStage

    app = make_app(outdir=str(tmp_path))
    stage = LlmOpsStage(app, config_with("dev", {"capabilities": {"data_prep": False, "prompt_catalog": False, "rag": False, "fine_tuning": False, "human_review": False}}).get("dev"))
    s3.Bucket(Stack(stage, "Careless"), "Open")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


def test_compliance_packs_switch_on_per_environment():
    from llmops.stage import LlmOpsStage

    cfg = config_with("dev", {"nag_packs": {"hipaa": True, "nist_800_53_r5": True},
                              "capabilities": {"data_prep": False, "prompt_catalog": False, "rag": False, "fine_tuning": False, "human_review": False}})
    stage = LlmOpsStage(make_app(), cfg.get("dev"))
    assert stage.rule_packs == ["AwsSolutionsChecks", "HIPAASecurityChecks", "NIST80053R5Checks"]
    default = LlmOpsStage(make_app(), config_with("dev").get("dev"))
    assert default.rule_packs == ["AwsSolutionsChecks"]


def test_env_context_selects_one_environment():
    app = build_app(make_app(env="dev"))
    assert [c.node.id for c in app.node.children if hasattr(c, "env_config")] == ["dev"]
