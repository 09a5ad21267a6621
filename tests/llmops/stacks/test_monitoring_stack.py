"""Monitoring stack: a drift alarm per use case and metric, the retraining rule, scoped permissions, the metrics table."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from llmops.config import ConfigError
from tests.helpers import config_with, synth_stage


@pytest.fixture(scope="module")
def dev():
    return Template.from_stack(synth_stage("dev").monitoring)


def _drift_alarms(template):
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("AlarmName", "").startswith("llmops-dev-drift-")}


def test_one_drift_alarm_per_use_case_and_metric_with_an_action(dev):
    alarms = _drift_alarms(dev)
    assert sorted(alarms) == [f"llmops-dev-drift-assistant-{m}" for m in sorted(["relevance", "hallucination", "toxicity", "refusal"])]
    for name, alarm in alarms.items():
        assert alarm["Threshold"] == 1 and alarm["AlarmActions"] and alarm["Statistic"] == "Maximum"
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert (alarm["Namespace"], alarm["MetricName"]) == ("LLMOps/Monitoring", "Drift")
        dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dims == {"UseCase": "assistant", "Metric": name.rsplit("-", 1)[1], "Statistic": "Rule"}
        assert "PSI >= 0.2, or KS >= 0.1 with p < 0.01" in alarm["AlarmDescription"]


@pytest.mark.parametrize("overrides", [{}, {"psi_threshold": 0.1, "ks_threshold": 0.3, "ks_pvalue": 0.05}])
def test_the_scorer_and_the_cli_apply_one_drift_rule_from_config(overrides):
    from lambdas.runtime.monitoring.drift import DriftRule
    from llmops.cli.monitor import drift_rule_for

    stage = synth_stage("dev", {"monitoring": {"drift": overrides}} if overrides else None)
    cfg = stage.env_config.monitoring.drift
    template = Template.from_stack(stage.monitoring)
    env = next(f["Properties"]["Environment"]["Variables"] for f in template.find_resources("AWS::Lambda::Function").values()
               if f["Properties"]["Handler"] == "lambdas.monitoring_score.handler.handler")
    assert DriftRule.from_env(env) == drift_rule_for(stage.env_config) == DriftRule(cfg.psi_threshold, cfg.ks_threshold, cfg.ks_pvalue)
    for alarm in _drift_alarms(template).values():
        assert f"PSI >= {cfg.psi_threshold}, or KS >= {cfg.ks_threshold} with p < {cfg.ks_pvalue}" in alarm["AlarmDescription"]


def test_drift_module_defaults_equal_the_config_defaults():
    from lambdas.runtime.monitoring import drift as d
    from llmops.config import DriftConfig

    cfg = DriftConfig()
    assert (d.PSI_THRESHOLD, d.KS_MIN_STATISTIC, d.KS_PVALUE) == (cfg.psi_threshold, cfg.ks_threshold, cfg.ks_pvalue)


def test_drift_alarms_reach_the_retraining_function_through_eventbridge(dev):
    (rule,) = [r for r in dev.find_resources("AWS::Events::Rule").values()
               if r["Properties"]["EventPattern"]["source"] == ["aws.cloudwatch"]]
    assert rule["Properties"]["EventPattern"]["detail"] == {"alarmName": [{"prefix": "llmops-dev-drift-"}], "state": {"value": ["ALARM"]}}
    assert rule["Properties"]["Targets"][0]["DeadLetterConfig"]["Arn"]
    dev.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "lambdas.monitoring_retraining.handler.handler",
        "Environment": {"Variables": Match.object_like({"COOLDOWN_HOURS": "168", "REQUIRE_APPROVAL": "true",
                                                         "PIPELINES": json.dumps({"assistant": "llmops-dev-ft-assistant"})})},
    })


def test_the_function_may_start_only_its_use_cases_pipelines(dev):
    statements = [s for p in dev.find_resources("AWS::IAM::Policy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    start = [s for s in statements if s["Action"] == "sagemaker:StartPipelineExecution"]
    assert len(start) == 1 and "pipeline/llmops-dev-ft-assistant" in json.dumps(start[0]["Resource"])


def test_metrics_table_is_partitioned_by_date_for_athena(dev):
    dev.has_resource_properties("AWS::Glue::Table", {"TableInput": Match.object_like({
        "Name": "interaction_metrics", "PartitionKeys": [{"Name": "dt", "Type": "string"}]})})


def test_no_retraining_loop_when_switched_off():
    stage = synth_stage("dev", {"monitoring": {"retraining": {"enabled": False}}})
    template = Template.from_stack(stage.monitoring)
    assert not template.find_resources("AWS::Events::Rule", {"Properties": {"EventPattern": {"source": ["aws.cloudwatch"]}}})
    assert _drift_alarms(template)


def test_unknown_drift_metric_is_named():
    with pytest.raises(ConfigError, match=r"monitoring.drift.metrics: unknown metric\(s\) \['vibes'\]"):
        config_with("dev", {"monitoring": {"drift": {"metrics": ["vibes"]}}})


# -- the scorer: capture and interaction log -> metrics --------------------------------------------

def _scorer(template):
    return next(f["Properties"] for f in template.find_resources("AWS::Lambda::Function").values()
                if f["Properties"]["Handler"] == "lambdas.monitoring_score.handler.handler")


def test_capture_files_of_the_llm_endpoint_reach_the_scorer_through_eventbridge_and_sqs(dev):
    rules = [r["Properties"] for r in dev.find_resources("AWS::Events::Rule").values()
             if r["Properties"]["EventPattern"].get("source") == ["aws.s3"]]
    (rule,) = rules
    assert rule["EventPattern"]["detail-type"] == ["Object Created"]
    assert rule["EventPattern"]["detail"]["object"] == {"key": [{"prefix": "capture/llmops-dev-llm/"}]}
    assert rule["Targets"][0]["DeadLetterConfig"]["Arn"] and rule["Targets"][0]["RetryPolicy"]
    queues = dev.find_resources("AWS::SQS::Queue", {"Properties": {"RedrivePolicy": Match.any_value()}})
    assert len(queues) == 1 and next(iter(queues.values()))["Properties"]["KmsMasterKeyId"]
    dev.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "EventSourceArn": Match.any_value(), "FunctionResponseTypes": ["ReportBatchItemFailures"], "BatchSize": 5})


def test_scorer_settings_come_from_config(dev):
    env = _scorer(dev)["Environment"]["Variables"]
    assert json.loads(env["USE_CASES"]) == {"default": "assistant", "endpoints": {"llmops-dev-llm": {}}}
    assert json.loads(env["DRIFT_METRICS"]) == ["relevance", "hallucination", "toxicity", "refusal"]
    assert (env["DRIFT_PSI_THRESHOLD"], env["DRIFT_KS_THRESHOLD"], env["DRIFT_KS_PVALUE"]) == ("0.2", "0.1", "0.01")
    assert json.loads(env["REVIEW_ROUTING"])["sample_rate"] == 0.02 and env["REVIEW_QUEUE_URL"]
    assert _scorer(dev)["MemorySize"] == 1024 and _scorer(dev)["Timeout"] == 300


def test_a_variant_serving_a_use_cases_package_maps_to_that_use_case():
    stage = synth_stage("staging", {
        "inference": {"llm": {"variants": {"a": {"weight": 1}, "b": {"weight": 1, "model": {
            "source": "model-package", "use_case": "assistant"}}}}},
    })
    env = _scorer(Template.from_stack(stage.monitoring))["Environment"]["Variables"]
    assert json.loads(env["USE_CASES"]) == {"default": "assistant", "endpoints": {"llmops-stg-llm": {"b": "assistant"}}}


def test_scorer_permissions_are_scoped(dev):
    statements = [s for k, p in dev.find_resources("AWS::IAM::Policy").items() if k.startswith("ScoreFunction")
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    text = json.dumps(statements)
    put = [s for s in statements if s["Action"] == "cloudwatch:PutMetricData" and "Condition" in s]
    assert {"StringEquals": {"cloudwatch:namespace": "LLMOps/Monitoring"}} in [s["Condition"] for s in put]
    for prefix in ("monitoring/metrics/*", "quarantine/monitoring/*", "monitoring/baselines/*", "capture/*"):
        assert prefix in text, prefix


def test_the_review_stack_does_not_depend_on_monitoring():
    stage = synth_stage("dev")
    assert stage.monitoring not in stage.human_review.dependencies
    assert stage.human_review in stage.monitoring.dependencies


def test_glue_columns_match_what_the_scorer_writes(dev):
    from lambdas.runtime.monitoring.batch import METADATA_COLUMNS
    from lambdas.runtime.monitoring.scoring import metric_set

    (table,) = dev.find_resources("AWS::Glue::Table").values()
    columns = {c["Name"]: c["Type"] for c in table["Properties"]["TableInput"]["StorageDescriptor"]["Columns"]}
    for name in ("experiment", "arm", "variant", "embedding_model", "latency_ms", "endpoint", *METADATA_COLUMNS):
        assert name in columns, name
    assert columns["latency_ms"] == "double" and columns["prompt_version"] == "int"
    missing = [m for m in metric_set(False) if m not in columns]
    assert not missing


# -- the environment dashboard -----------------------------------------------------------------------

def _dashboard(template) -> str:
    (board,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    return json.dumps(board["Properties"]["DashboardBody"])


def test_one_environment_dashboard_with_serving_quality_drift_and_review(dev):
    body = _dashboard(dev)
    assert next(iter(dev.find_resources("AWS::CloudWatch::Dashboard").values()))["Properties"]["DashboardName"] == "llmops-dev-environment"
    for needle in ("ModelLatency", "Invocations", "Invocation5XXErrors", "GPUUtilization",  # endpoints
                   "PromptTokens", "CompletionTokens", "Quality.refusal", "Quality.injection", "Quality.readability",
                   "RetrievalLatency", "TopScore",  # the query function's EMF
                   "RecordsScored", "MalformedLines", "RoutedToReview", "toxicity",  # the scorer's aggregates
                   "Drift", "PSI threshold", "KS threshold", "Drift alarms",
                   "MeanRating", "ProblemRate.unsupported_claim", "ProblemRate.harmful_content", "ReviewCount",
                   "Inference alarms"):
        assert needle in body, needle


def test_dashboard_problem_labels_are_the_review_forms():
    from lambdas.runtime.human_review.model import PROBLEMS
    from llmops.stacks.monitoring import REVIEW_PROBLEMS

    assert REVIEW_PROBLEMS == PROBLEMS


def test_the_interaction_log_stream_feeds_the_scorer_with_bisect_partial_batches_and_an_on_failure_dlq(dev):
    mappings = [m["Properties"] for m in dev.find_resources("AWS::Lambda::EventSourceMapping").values()
                if m["Properties"].get("StartingPosition")]
    (stream,) = mappings
    assert stream["BisectBatchOnFunctionError"] is True and stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stream["DestinationConfig"]["OnFailure"]["Destination"] and stream["MaximumRetryAttempts"] == 5
    patterns = [json.loads(f["Pattern"]) for f in stream["FilterCriteria"]["Filters"]]
    assert {"eventName": ["INSERT"]} in patterns
    assert {"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"feedback": {"M": {"rating": {"S": ["down"]}}}}}} in patterns
    statements = json.dumps([s for k, p in dev.find_resources("AWS::IAM::Policy").items() if k.startswith("ScoreFunction")
                             for s in p["Properties"]["PolicyDocument"]["Statement"]])
    assert "dynamodb:GetRecords" in statements and "sqs:SendMessage" in statements


def test_the_scorer_embeds_with_the_index_model_and_alarms_when_it_cannot(dev):
    env = _scorer(dev)["Environment"]["Variables"]
    assert env["EMBEDDING_PROVIDER"] == "sagemaker" and env["EMBEDDING_DIMENSION"] == "384"
    assert "llmops-dev-embeddings" in json.dumps(env["EMBEDDING_ENDPOINT_NAME"])
    statements = [s for k, p in dev.find_resources("AWS::IAM::Policy").items() if k.startswith("ScoreFunction")
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    invoke = [s for s in statements if "sagemaker:InvokeEndpoint" in json.dumps(s["Action"])]
    assert invoke and all("*" not in json.dumps(s["Resource"]).replace("arn:aws", "") or "endpoint/" in json.dumps(s["Resource"])
                          for s in invoke)
    skipped = [a["Properties"] for a in dev.find_resources("AWS::CloudWatch::Alarm").values()
               if a["Properties"].get("MetricName") == "ModelMetricsSkipped"]
    assert sorted(d["Value"] for a in skipped for d in a["Dimensions"]) == ["capture", "rag"]
    assert all(a["AlarmActions"] for a in skipped)
