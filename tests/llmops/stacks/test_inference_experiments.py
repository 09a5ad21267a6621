"""Model A/B and shadow experiments drive the LLM endpoint's variants; a promoted winner is left alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.config import ConfigError
from tests.helpers import REPO_ROOT, config_with, synth_stage, template_of

ONLY = {"capabilities": {"data_prep": False, "prompt_catalog": False, "fine_tuning": False, "human_review": False, "rag": False,
                         "monitoring": False}}
VARIANTS = {"primary": {}, "tuned": {"model": {"source": "s3", "s3_prefix": "tuned-2026-12/"}}}
AB = {"kind": "model-ab", "endpoint": "llm", "end": "2099-12-31", "min_samples": 50,
      "arms": [{"name": "base", "variant": "primary", "weight": 80}, {"name": "tuned", "variant": "tuned", "weight": 20}]}
SHADOW = {"kind": "model-shadow", "endpoint": "llm", "end": "2099-12-31", "shadow_sampling": 25,
          "arms": [{"name": "base", "variant": "primary"}, {"name": "tuned", "variant": "tuned", "shadow": True}]}


def overrides(experiment: dict | None, variants: dict = VARIANTS) -> dict:
    out = json.loads(json.dumps(ONLY))
    out["inference"] = {"llm": {"variants": variants}}
    if experiment:
        out["experiments"] = {"tuned-vs-base": experiment}
    return out


def stage(experiment: dict | None, variants: dict = VARIANTS):
    return synth_stage("staging", overrides(experiment, variants))


def llm(template, type_):
    return {k: r["Properties"] for k, r in template.find_resources(type_).items() if k.startswith("Llm")}


def endpoint_config(template) -> dict:
    (config,) = llm(template, "AWS::SageMaker::EndpointConfig").values()
    return config


@pytest.fixture(scope="module")
def ab():
    return template_of(stage(AB).inference)


@pytest.fixture(scope="module")
def shadow():
    return template_of(stage(SHADOW).inference)


def test_model_ab_arms_are_the_weighted_production_variants_each_serving_its_model(ab):
    config = endpoint_config(ab)
    rows = {v["VariantName"]: v for v in config["ProductionVariants"]}
    assert {n: v["InitialVariantWeight"] for n, v in rows.items()} == {"primary": 80, "tuned": 20}
    assert "ShadowProductionVariants" not in config
    # each variant names its own model resource; the tuned one reads models/<s3_prefix>, the base one base-models/
    model_refs = {name: v["ModelName"]["Fn::GetAtt"][0] for name, v in rows.items()}
    data = {k: json.dumps(r["Properties"]["PrimaryContainer"]["ModelDataSource"])
            for k, r in ab.find_resources("AWS::SageMaker::Model").items()}
    assert model_refs["primary"] != model_refs["tuned"]
    assert "/models/tuned-2026-12/" in data[model_refs["tuned"]] and "/base-models/" in data[model_refs["primary"]]
    # capture stays on: SageMaker writes capture/<endpoint>/<variant>/... so the judge splits records by variant
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 100


def test_model_shadow_puts_the_shadow_arm_in_shadow_variants_with_the_sampling_as_weight(shadow):
    config = endpoint_config(shadow)
    (production,) = config["ProductionVariants"]
    (copy,) = config["ShadowProductionVariants"]
    assert production["VariantName"] == "primary" and production["InitialVariantWeight"] == 100
    assert copy["VariantName"] == "tuned" and copy["InitialVariantWeight"] == 25 and copy["ModelName"]
    assert config["DataCaptureConfig"]["EnableCapture"] is True


@pytest.mark.parametrize("experiment, winner_variant", [(AB, "tuned"), (SHADOW, "tuned"), (AB, "primary")])
def test_a_promoted_winner_is_the_endpoints_only_variant(experiment, winner_variant):
    winner = next(a["name"] for a in experiment["arms"] if a["variant"] == winner_variant)
    arms = [{**a, "weight": 100 if a["name"] == winner else 0} if experiment["kind"] == "model-ab" else a
            for a in experiment["arms"]]
    config = endpoint_config(template_of(stage({**experiment, "arms": arms, "winner": winner}).inference))
    (only,) = config["ProductionVariants"]
    assert only["VariantName"] == winner_variant and only["InitialVariantWeight"] == 100
    assert "ShadowProductionVariants" not in config


def test_without_an_experiment_the_declared_variants_keep_their_weights():
    config = endpoint_config(template_of(stage(None, {"primary": {"weight": 3}, "tuned": {"weight": 1}}).inference))
    assert {v["VariantName"]: v["InitialVariantWeight"] for v in config["ProductionVariants"]} == {"primary": 3, "tuned": 1}


def test_nothing_moves_endpoint_weights_behind_cloudformation(ab, shadow):
    """No role may call UpdateEndpointWeightsAndCapacities, no custom resource does, no runtime code does."""
    for template in (ab, shadow):
        assert "UpdateEndpointWeightsAndCapacities" not in json.dumps(template.to_json())
    for other in stage(AB).stacks:
        assert "UpdateEndpointWeightsAndCapacities" not in json.dumps(template_of(other).to_json()), other.stack_name
    code = [p for p in (REPO_ROOT / "lambdas").rglob("*.py")] + [p for p in (REPO_ROOT / "llmops").rglob("*.py")]
    calls = [str(p) for p in code if "update_endpoint_weights_and_capacities" in p.read_text(encoding="utf-8")]
    assert calls == []


@pytest.mark.parametrize("change, message", [
    ({"endpoint": "other"}, "experiments.tuned-vs-base.endpoint: 'other' is not the LLM endpoint; allowed: llm"),
    ({"arms": [{"name": "base", "variant": "primary", "weight": 50}, {"name": "x", "variant": "nope", "weight": 50}]},
     "experiments.tuned-vs-base.arms.x.variant: 'nope' is not a variant of inference.llm.variants; declared: primary, tuned"),
    ({"arms": [{"name": "base", "variant": "primary", "weight": 50}, {"name": "b2", "variant": "primary", "weight": 50}]},
     "each arm serves its own variant"),
])
def test_bad_model_experiments_are_refused_naming_the_field(change, message):
    with pytest.raises(ConfigError) as err:
        config_with("staging", overrides({**AB, **change}))
    assert message in str(err.value)


def test_variants_outside_the_experiment_scale_to_zero_and_two_experiments_are_refused():
    with pytest.raises(ConfigError, match=r"inference.llm.variants \['spare'\] are not arms"):
        config_with("staging", overrides(AB, {**VARIANTS, "spare": {}}))
    with pytest.raises(ConfigError, match="scale-to-zero serves one inference component"):
        config_with("dev", {**overrides(AB), "inference": {"llm": {"variants": VARIANTS}}})
    two = overrides(AB)
    two["experiments"]["second"] = SHADOW
    with pytest.raises(ConfigError, match="one model experiment per endpoint"):
        config_with("staging", two)
    with pytest.raises(ConfigError, match="data_capture_percent is 0"):
        config_with("staging", {**overrides(AB), "inference": {"llm": {"variants": VARIANTS}, "data_capture_percent": 0}})


def test_docs_say_why_no_inference_experiment_resource():
    text = (Path(REPO_ROOT) / "docs" / "experiments.md").read_text(encoding="utf-8")
    assert "AWS::SageMaker::InferenceExperiment" in text


def test_the_dashboard_shows_every_arm(ab):
    (dashboard,) = ab.find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "invocations per variant" in body and '\\"VariantName\\",\\"tuned\\"' in body
