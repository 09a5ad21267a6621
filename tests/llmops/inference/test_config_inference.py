"""The inference section of the config: every refusal names the field and the figures."""

from __future__ import annotations

import pytest

from llmops.config import ConfigError
from tests.helpers import config_with


def refused(overrides, env="dev"):
    with pytest.raises(ConfigError) as err:
        config_with(env, overrides)
    return str(err.value)


def llm(**kw):
    return {"inference": {"llm": kw}}


def test_repo_config_resolves_one_variant_per_env():
    cfg = config_with("dev").get("dev")
    (variant,) = cfg.llm_variants()
    assert variant.container == "djl-lmi" and variant.instance_type == "ml.g5.2xlarge" and variant.tensor_parallel_degree == 1
    assert variant.settings == {}
    assert cfg.inference.llm.scaling.mode == "scale-to-zero"
    assert config_with("prod").get("prod").llm_variants()[0].instance_count == 2


def test_unknown_container_setting():
    msg = refused(llm(settings={"MAX_LENGTH": 4096}))
    assert "environments.dev" in msg and "inference.llm.settings" in msg and "OPTION_MAX_MODEL_LEN" in msg


def test_model_too_big_names_figures_and_a_type():
    msg = refused(llm(model={"base_model": "meta-llama/Llama-3.1-70B-Instruct", "dtype": "fp16"}))
    assert "inference.llm" in msg and "GiB" in msg and "a type that fits: ml." in msg


def test_tp_must_divide():
    msg = refused(llm(instance_type="ml.g5.12xlarge", tensor_parallel_degree=8))
    assert "inference.llm.tensor_parallel_degree" in msg and "1, 2, 4" in msg


def test_health_check_shorter_than_loading_timeout():
    msg = refused(llm(health_check_timeout_seconds=600))
    assert "health_check_timeout_seconds" in msg and "1800" in msg
    config_with("dev", llm(health_check_timeout_seconds=600, settings={"OPTION_MODEL_LOADING_TIMEOUT": 600}))


def test_unknown_instance_type_and_facts_escape_hatch():
    msg = refused(llm(instance_type="ml.g7.2xlarge"))
    assert "inference.llm.instance_type" in msg and "instance_facts" in msg
    cfg = config_with("dev", {**llm(instance_type="ml.g7.2xlarge"), "instance_facts": {"ml.g7.2xlarge": {
        "accelerator": "nvidia", "accelerator_count": 1, "accelerator_memory_gib": 48, "vcpus": 8, "memory_gib": 64,
        "nvme": True}}}).get("dev")
    assert cfg.instance("ml.g7.2xlarge").accelerator_memory_gib == 48


def test_unknown_model_needs_params():
    msg = refused(llm(model={"base_model": "acme/secret-13b"}))
    assert "inference.llm.model.params_billion" in msg
    config_with("dev", llm(model={"base_model": "acme/secret-13b", "params_billion": 13, "dtype": "awq"}))


def test_model_sources():
    assert "s3_prefix" in refused(llm(model={"source": "s3"}))
    assert "use_case" in refused(llm(model={"source": "model-package"}))
    msg = refused(llm(model={"source": "model-package", "use_case": "nope"}))
    assert "assistant" in msg


def test_container_must_match_accelerator():
    msg = refused(llm(container="tgi-neuronx"))
    assert "ml.inf2" in msg
    config_with("dev", llm(container="tgi-neuronx", instance_type="ml.inf2.xlarge", settings={}))


def test_variants_rules():
    assert "production variants" in refused(llm(variants={f"v{i}": {} for i in range(11)}, scaling={"mode": "none"}))
    msg = refused(llm(variants={"a": {}, "b": {}, "s": {"shadow": True}}, scaling={"mode": "none"}))
    assert "exactly one production" in msg
    msg = refused(llm(variants={"a": {}, "b": {}}))
    assert "scale-to-zero" in msg
    cfg = config_with("dev", llm(variants={"a": {"weight": 3}, "s": {"shadow": True, "instance_type": "ml.g6.2xlarge"}},
                                 scaling={"mode": "none"})).get("dev")
    assert [(v.name, v.shadow, v.instance_type) for v in cfg.llm_variants()] == [
        ("a", False, "ml.g5.2xlarge"), ("s", True, "ml.g6.2xlarge")]


def test_scaling_bounds():
    assert "target tracking cannot leave zero" in refused(llm(scaling={"mode": "target-tracking", "min_capacity": 0}))


def test_embedding_dimension_mismatch():
    msg = refused({"inference": {"embeddings": {"model_id": "BAAI/bge-base-en-v1.5"}}})
    assert "inference.embeddings.dimension" in msg and "768" in msg and "384" in msg
    msg = refused({"inference": {"embeddings": {"container": "tei"}}})
    assert "tei-cpu" in msg
