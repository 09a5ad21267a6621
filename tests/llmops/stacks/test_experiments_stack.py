"""ExperimentsStack: the scheduled judge, least privilege, DLQ and alarm; absent where no experiment is declared."""

from __future__ import annotations

import json

import pytest

from llmops.config import ConfigError
from tests.helpers import config_with, make_app, synth_stage, template_of

OFF = {"data_prep": False, "prompt_catalog": False, "fine_tuning": False, "human_review": False, "rag": False,
       "monitoring": False, "inference": False}
PROMPT_AB = {"kind": "prompt-ab", "prompt": "rag-answer", "end": "2099-12-31", "metrics": ["relevance", "latency_ms"],
             "arms": [{"name": "v1", "version": 1, "weight": 90}, {"name": "v2", "version": 2, "weight": 10}]}
MODEL_AB = {"kind": "model-ab", "endpoint": "llm", "end": "2099-12-31",
            "arms": [{"name": "base", "variant": "primary", "weight": 50}, {"name": "tuned", "variant": "tuned", "weight": 50}]}


def overrides(env: str = "dev", **extra) -> dict:
    return {"capabilities": OFF, "experiments": {"answer-v2": PROMPT_AB}, **extra}


@pytest.fixture(scope="module")
def dev():
    return template_of(synth_stage("dev", overrides()).experiments)


def _statements(template) -> list[dict]:
    policies = template.find_resources("AWS::IAM::Policy")
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_no_stack_without_experiments():
    stage = synth_stage("dev", {"capabilities": OFF})
    assert not hasattr(stage, "experiments") and all("experiments" not in s.stack_name for s in stage.stacks)


def test_daily_schedule_invokes_the_judge_with_a_dlq_and_retries(dev):
    (rule,) = dev.find_resources("AWS::Events::Rule").values()
    props = rule["Properties"]
    assert props["ScheduleExpression"] == "rate(1 day)"
    (target,) = props["Targets"]
    assert target["DeadLetterConfig"]["Arn"] and target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    functions = [f["Properties"] for f in dev.find_resources("AWS::Lambda::Function").values()]
    (judge,) = [f for f in functions if f["Handler"] == "lambdas.experiments_judge.handler.handler"]
    env = judge["Environment"]["Variables"]
    specs = json.loads(env["EXPERIMENTS"])
    assert specs == {"answer-v2": {"kind": "prompt-ab", "metrics": ["relevance", "latency_ms"], "min_samples": 200,
                                   "alpha": 0.05, "arms": [{"name": "v1"}, {"name": "v2"}]}}
    assert env["LOOKBACK_DAYS"] == "30" and "DATA_BUCKET" in env and judge["Timeout"] == 600 and judge["MemorySize"] == 1024


def test_role_reads_only_the_metrics_prefix_and_writes_only_the_verdicts_prefix(dev):
    s3 = [s for s in _statements(dev) if any(str(a).startswith("s3:") for a in _list(s["Action"]))]
    reads = [s for s in s3 if "s3:GetObject" in _list(s["Action"])]
    writes = [s for s in s3 if "s3:PutObject" in _list(s["Action"])]
    assert reads and writes
    assert all(json.dumps(s["Resource"]).endswith('/monitoring/metrics/*"]]}') for s in reads)
    assert all(json.dumps(s["Resource"]).endswith('/experiments/verdicts/*"]]}') for s in writes)
    actions = {a for s in _statements(dev) for a in _list(s["Action"])}
    assert not any(a.startswith("sagemaker:") for a in actions)  # the judge never touches an endpoint
    assert "s3:DeleteObject" not in actions and not any(a.endswith("*") for a in actions if a != "kms:*")


def _list(value):
    return value if isinstance(value, list) else [value]


def test_errors_and_dlq_alarms_notify(dev):
    alarms = [a["Properties"] for a in dev.find_resources("AWS::CloudWatch::Alarm").values()]
    names = {a.get("AlarmName") for a in alarms}
    assert "llmops-dev-experiments-judge-errors" in names
    assert all(a["AlarmActions"] for a in alarms) and len(alarms) >= 2  # errors + the DLQ's depth


def test_model_experiments_hand_the_deployed_endpoint_name_and_variants():
    cfg = {"capabilities": {**OFF, "inference": True}, "experiments": {"tuned-vs-base": MODEL_AB},
           "inference": {"llm": {"variants": {"primary": {}, "tuned": {}}}}}
    stage = synth_stage("staging", cfg)
    functions = template_of(stage.experiments).find_resources("AWS::Lambda::Function").values()
    env = next(f["Properties"]["Environment"]["Variables"] for f in functions
               if f["Properties"]["Handler"] == "lambdas.experiments_judge.handler.handler")
    spec = json.loads(env["EXPERIMENTS"])["tuned-vs-base"]
    assert spec["endpoint"] == "llmops-stg-llm" and spec["arms"][1] == {"name": "tuned", "variant": "tuned"}


def test_schedule_expression_is_checked():
    for bad, message in (("rate(5 minutes)", "at most hourly"), ("daily", "not an EventBridge schedule expression"),
                         ("rate(1 days)", "singular unit for 1")):
        with pytest.raises(ConfigError, match=message) as err:
            config_with("dev", overrides(experiments_judge={"schedule": bad}))
        assert "experiments_judge.schedule" in str(err.value)
    assert config_with("dev", overrides(experiments_judge={"schedule": "cron(0 6 * * ? *)"})).get("dev")


@pytest.mark.synth
def test_synth_passes_cdk_nag(tmp_path) -> None:
    from llmops.stage import LlmOpsStage

    app = make_app(outdir=str(tmp_path))
    LlmOpsStage(app, config_with("prod", overrides()).get("prod"), nag=True)
    app.synth()  # raises ValidationFailed with the report on any finding
