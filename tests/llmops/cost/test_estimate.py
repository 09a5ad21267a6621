"""The cost estimator against hand-computed figures, the dev profile's idle cap, and the CLI."""

from __future__ import annotations

import json

import pytest

from llmops.cli import main as cli
from llmops.cost import IDLE, PER_PAGES, PER_QUERIES, PER_TRAINING_RUN, PriceTable, estimate
from llmops.cost.estimate import Price
from tests.helpers import config_with


def _line(est, item_prefix, category=IDLE):
    matches = [l for l in est.lines if l.category == category and l.item.startswith(item_prefix)]
    assert len(matches) == 1, [l.item for l in est.lines]
    return matches[0]


def test_interface_endpoints_are_priced_per_endpoint_and_az_hour():
    env = config_with("staging").get("staging")  # 18 endpoints in 2 AZs
    line = _line(estimate(env), "interface VPC endpoints")
    assert line.quantity == 18 * 2
    assert line.cost == pytest.approx(36 * 0.01 * 24)  # $8.64, the figure in the cost issue
    assert "network.interface_endpoints (18) x AZs (2)" in line.quantity_from


def test_prod_endpoints_span_three_azs():
    env = config_with("prod").get("prod")
    assert _line(estimate(env), "interface VPC endpoints").cost == pytest.approx(18 * 3 * 0.01 * 24)


def test_opensearch_serverless_idle_minimum_follows_standby_replicas():
    with_standby = config_with("prod").get("prod")
    assert _line(estimate(with_standby), "OpenSearch Serverless").cost == pytest.approx(2 * 0.24 * 24)
    without = config_with("staging").get("staging")
    assert _line(estimate(without), "OpenSearch Serverless").cost == pytest.approx(1 * 0.24 * 24)


def test_aurora_minimum_capacity_and_paused_cluster():
    warm = config_with("prod", {"vector_store": {"backend": "aurora-pgvector"}}).get("prod")
    assert _line(estimate(warm), "Aurora Serverless v2").cost == pytest.approx(0.5 * 0.12 * 24)
    paused = config_with("dev").get("dev")
    assert not [l for l in estimate(paused).lines if l.item.startswith("Aurora Serverless v2")]


def test_kendra_is_an_idle_cost():
    env = config_with("prod", {"vector_store": {"backend": "kendra"}, "cost": {"allow": ["kendra"]}}).get("prod")
    assert _line(estimate(env), "Kendra index").cost == pytest.approx(1.125 * 24)


def test_per_unit_lines():
    env = config_with("dev", {"rag": {"llm_provider": "bedrock"}}).get("dev")
    est = estimate(env)
    assert _line(est, "API Gateway", PER_QUERIES).cost == pytest.approx(1000 * 3.5e-6)
    assert _line(est, "Bedrock amazon.nova-lite-v1:0 input", PER_QUERIES).cost == pytest.approx(1200 * 0.00006, abs=1e-4)
    assert _line(est, "Textract TABLES", PER_PAGES).cost == pytest.approx(15.0)
    assert _line(est, "Comprehend", PER_PAGES).cost == pytest.approx(1000 * 30 * 4 * 0.0001)
    training = _line(est, "training ml.g5.2xlarge", PER_TRAINING_RUN)
    assert training.cost == pytest.approx(1 * 24 * 0.3 * 1.515, abs=1e-3)  # dev trains on spot


def test_every_line_is_quantity_times_price():
    for name in ("dev", "staging", "prod"):
        est = estimate(config_with(name).get(name))
        for line in est.lines:
            assert line.quantity_from and line.price_source.startswith("https://")
            assert line.cost >= 0


def test_dev_costs_at_most_one_dollar_a_day_idle_with_every_capability_on():
    env = config_with("dev").get("dev")
    caps = env.capabilities
    assert caps.data_prep and caps.prompt_catalog and caps.rag and caps.fine_tuning
    assert estimate(env).total(IDLE) <= 1.00


def test_unknown_region_falls_back_to_us_east_1_with_a_warning():
    env = config_with("dev", {"region": "eu-west-1"}).get("dev")
    est = estimate(env)
    assert any("no eu-west-1 prices" in w for w in est.warnings)
    assert est.total(IDLE) > 0


def test_an_unpriced_instance_is_a_warning_not_a_silent_zero():
    table = PriceTable([p for p in PriceTable.load()._rows.values() if p.item != "ml.g5.2xlarge"])
    est = estimate(config_with("dev").get("dev"), prices=table)
    assert any("ml.g5.2xlarge" in w for w in est.warnings)


def test_region_specific_price_wins():
    rows = list(PriceTable.load()._rows.values()) + [
        Price("eu-west-1", "vpc", "interface-endpoint", "endpoint-AZ-hour", 0.011, "2026-12-02", "https://example")
    ]
    env = config_with("dev", {"region": "eu-west-1"}).get("dev")
    assert _line(estimate(env, prices=PriceTable(rows)), "interface VPC endpoints").unit_price == 0.011


def test_templates_add_alarms_and_dashboards(tmp_path):
    assembly = tmp_path / "assembly-dev"
    assembly.mkdir()
    (assembly / "a.template.json").write_text(json.dumps({"Resources": {
        **{f"A{i}": {"Type": "AWS::CloudWatch::Alarm"} for i in range(30)},
        # A metric-math alarm is billed per metric it reads (three here), not once.
        "M": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Metrics": [
            {"Id": "e", "Expression": "a + b + c"}, *({"Id": x, "MetricStat": {}} for x in "abc")]}},
        "D": {"Type": "AWS::CloudWatch::Dashboard"},
        "K": {"Type": "AWS::KMS::Key"},
    }}))
    est = estimate(config_with("dev").get("dev"), cdk_out=tmp_path)
    assert _line(est, "CloudWatch alarm metrics").quantity == 33
    assert _line(est, "CloudWatch alarm metrics").cost == pytest.approx(33 * 0.10 / 30.4, abs=1e-4)
    assert _line(est, "CloudWatch dashboards").cost == pytest.approx(3.0 / 30.4, abs=1e-4)


def test_cli_prints_itemised_estimates_and_json(capsys):
    assert cli(["cost", "dev", "--cdk-out", "/nonexistent"]) == 0
    out = capsys.readouterr().out
    assert "idle, per day" in out and "interface VPC endpoints" in out and "per training run" in out
    assert cli(["cost", "--json", "--cdk-out", "/nonexistent"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {e["environment"] for e in doc["environments"]} == {"dev", "staging", "prod"}
    assert all(e["totals"]["idle_per_day"] > 0 for e in doc["environments"])


def test_cli_names_an_unknown_environment(capsys):
    assert cli(["cost", "qa"]) == 2
    assert "unknown environment 'qa'" in capsys.readouterr().err
