"""Idle cost of the inference endpoints: minimum instances x hourly price from the instance table."""

from __future__ import annotations

import pytest

from llmops.cost import IDLE, estimate
from llmops.instance_types import INSTANCE_TYPES
from tests.helpers import config_with


def _endpoint_lines(est):
    return {l.item: l for l in est.lines if l.category == IDLE and "endpoint" in l.item and "VPC" not in l.item}


def test_dev_scale_to_zero_llm_and_serverless_embeddings_idle_at_nothing():
    assert _endpoint_lines(estimate(config_with("dev").get("dev"))) == {}


def test_prod_pays_the_minimum_instances_of_each_variant_and_the_warm_embedding_instance():
    lines = _endpoint_lines(estimate(config_with("prod").get("prod")))
    llm = lines["LLM endpoint variant primary (ml.g5.4xlarge x 2)"]
    assert llm.quantity == 2 * 24 and llm.quantity_from.startswith("environments.prod.inference.llm.scaling.min_capacity")
    assert llm.cost == pytest.approx(2 * 24 * 2.03)
    emb = lines["embedding endpoint (ml.m5.xlarge x 1)"]
    assert emb.cost == pytest.approx(24 * 0.23)


def test_a_type_missing_from_the_price_csv_is_priced_from_the_instance_table():
    env = config_with("staging", {"inference": {"llm": {"instance_type": "ml.g6e.xlarge",
                                                        "scaling": {"min_capacity": 3, "max_capacity": 4}}}}).get("staging")
    est = estimate(env)
    line = _endpoint_lines(est)["LLM endpoint variant primary (ml.g6e.xlarge x 3)"]
    assert line.unit_price == INSTANCE_TYPES["ml.g6e.xlarge"].price_per_hour
    assert line.cost == pytest.approx(3 * 24 * INSTANCE_TYPES["ml.g6e.xlarge"].price_per_hour)
    assert "instance" in line.price_source.lower() or "pricing" in line.price_source.lower()


def test_shadow_variants_count_their_instances_and_async_endpoints_idle_at_zero():
    shadow = config_with("staging", {"inference": {"llm": {"variants": {
        "blue": {"weight": 1}, "canary": {"shadow": True, "instance_count": 1}}}}}).get("staging")
    lines = _endpoint_lines(estimate(shadow))
    assert set(lines) == {"LLM endpoint variant blue (ml.g5.2xlarge x 1)", "LLM endpoint variant canary (ml.g5.2xlarge x 1)"}
    assert "(shadow)" in lines["LLM endpoint variant canary (ml.g5.2xlarge x 1)"].quantity_from
    asynchronous = config_with("staging", {"inference": {"llm": {"async_inference": {"enabled": True}}}}).get("staging")
    assert _endpoint_lines(estimate(asynchronous)) == {}


def test_inference_switched_off_costs_nothing():
    env = config_with("prod", {"capabilities": {"inference": False}}).get("prod")
    assert _endpoint_lines(estimate(env)) == {}


def test_an_embedding_ab_arm_on_sagemaker_pays_its_own_warm_endpoint():
    arms = [{"name": "minilm", "weight": 50, "model": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384},
            {"name": "bge", "weight": 50, "model": "BAAI/bge-base-en-v1.5", "dimension": 768}]
    exp = {"kind": "embedding-ab", "end": "2099-12-31", "arms": arms}
    lines = _endpoint_lines(estimate(config_with("prod", {"experiments": {"emb-test": exp}}).get("prod")))
    arm = lines["embedding A/B arm bge endpoint (ml.m5.xlarge x 1)"]
    assert arm.cost == pytest.approx(24 * 0.23) and "embedding-ab arm bge" in arm.quantity_from
    titan = {**exp, "arms": [arms[0], {"name": "titan", "weight": 50, "model": "amazon.titan-embed-text-v2:0", "dimension": 512}]}
    assert not any("A/B arm" in item for item in _endpoint_lines(estimate(config_with("prod", {"experiments": {"emb-test": titan}}).get("prod"))))
