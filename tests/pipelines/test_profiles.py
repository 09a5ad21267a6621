"""Hardware profiles and the pinned Neuron image, checked against the SDK's own image config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.config import ConfigError
from pipelines.profiles import ProfileError
from pipelines import profiles
from tests.helpers import config_with


def test_pinned_neuron_image_is_listed_in_the_sdk_image_config():
    sagemaker_core = pytest.importorskip("sagemaker.core")
    config = json.loads((Path(sagemaker_core.__file__).parent / "image_uri_config" / "huggingface-neuronx.json").read_text())
    version = config["training"]["versions"]["4.55.4"]["pytorch2.7.0"]
    assert version["repository"] == profiles.NEURON_TRAINING_REPOSITORY
    for region, account in profiles.NEURON_TRAINING_REGISTRIES.items():
        assert version["registries"][region] == account
    tag = profiles.NEURON_TRAINING_TAG
    assert tag.startswith("2.7.0-transformers4.55.4-neuronx-") and version["py_versions"][0] in tag
    assert version["sdk_versions"][0].replace("sdk", "sdk") in tag and version["container_version"]["inf"] in tag


@pytest.mark.parametrize(
    "overrides, kind, distribution, processes",
    [
        ({}, "gpu", "ddp", 1),
        ({"fine_tuning": {"instance_type": "ml.g5.12xlarge"}}, "gpu", "ddp", 4),
        ({"fine_tuning": {"instance_type": "ml.g6.12xlarge", "instance_count": 2}}, "gpu", "ddp", 8),
        ({"fine_tuning": {"instance_type": "ml.p4d.24xlarge"}}, "gpu", "ddp", 8),
        ({"fine_tuning": {"instance_type": "ml.trn1.32xlarge", "instance_count": 1}}, "trainium", "ddp", 32),
        ({"fine_tuning": {"instance_type": "ml.trn1.2xlarge"}}, "trainium", "ddp", 2),
        ({"instances": {"training": {"type": "ml.trn1.32xlarge", "count": 4}}, "fine_tuning": {"distribution": "fsdp"}}, "trainium", "fsdp", 128),
    ],
)
def test_profiles(overrides, kind, distribution, processes):
    profile = profiles.hardware_profile(config_with("dev", overrides).get("dev"))
    assert (profile.kind, profile.distribution, profile.processes) == (kind, distribution, processes)
    assert profile.instance_type in profile.allowed_instance_types
    # A run may pick a multi-device node of the same kind, so torchrun is always on.
    assert profile.distributed


@pytest.mark.parametrize(("instance_type", "devices"), [
    ("ml.g5.2xlarge", 1), ("ml.g5.4xlarge", 1), ("ml.g5.12xlarge", 4), ("ml.g5.24xlarge", 4), ("ml.g5.48xlarge", 8),
    ("ml.g6e.xlarge", 1), ("ml.g6e.24xlarge", 4), ("ml.p4de.24xlarge", 8), ("ml.p5.48xlarge", 8),
    ("ml.trn1.2xlarge", 2), ("ml.trn1n.32xlarge", 32),
])
def test_devices_per_instance(instance_type, devices):
    assert profiles.devices_per_instance(instance_type) == devices


def test_every_selectable_instance_type_has_a_device_count():
    assert set(profiles.GPU_INSTANCE_TYPES + profiles.TRAINIUM_INSTANCE_TYPES) <= set(profiles.DEVICES_PER_INSTANCE)


def test_cpu_training_instances_have_no_fine_tuning_profile():
    env = config_with("dev", {"instances": {"training": {"type": "ml.m5.xlarge"}}}).get("dev")
    with pytest.raises(ProfileError, match=r"environments.dev.instances.training.type: 'ml.m5.xlarge' has no fine-tuning profile"):
        profiles.hardware_profile(env)


def test_qlora_on_trainium_fails_naming_the_field():
    with pytest.raises((ConfigError, ProfileError), match="strategy: qlora needs CUDA GPUs"):
        config_with("dev", {"fine_tuning": {"strategy": "qlora", "instance_type": "ml.trn1.2xlarge"}})


@pytest.mark.parametrize(
    "fine_tuning, message",
    [
        ({"strategy": "dora"}, "fine_tuning.strategy: got 'dora'; allowed: 'full', 'lora' or 'qlora'"),
        ({"lora": {"rank": 0}}, "fine_tuning.lora.rank"),
        ({"instance_type": "ml.x9.huge"}, "fine_tuning.instance_type"),
        ({"thresholds": {"min_rouge_l": 1.5}}, "fine_tuning.thresholds.min_rouge_l"),
        ({"thresholds": {"min_bleu": -1}}, "fine_tuning.thresholds.min_bleu"),
        ({"thresholds": {"max_perplexity": 0.5}}, "fine_tuning.thresholds.max_perplexity"),
        ({"learning_rate": 0}, "fine_tuning.learning_rate"),
        ({"reader_accounts": ["123"]}, "fine_tuning.reader_accounts"),
        ({"use_cases": {"Bad Name": {"dataset": "x"}}}, "fine_tuning.use_cases"),
        ({"spot": {"enabled": True, "max_wait": 3}}, "fine_tuning.spot.max_wait"),
    ],
)
def test_bad_config_fails_naming_the_field(fine_tuning, message):
    with pytest.raises(ConfigError) as err:
        config_with("dev", {"fine_tuning": fine_tuning})
    assert f"environments.dev.{message}" in str(err.value)


def test_fingerprint_changes_with_what_shapes_the_definition_only():
    base = profiles.fingerprint(config_with("dev").get("dev"))
    assert profiles.fingerprint(config_with("dev", {"fine_tuning": {"epochs": 4}}).get("dev")) != base
    assert profiles.fingerprint(config_with("dev", {"fine_tuning": {"reader_accounts": ["333333333333"]}}).get("dev")) == base


def test_image_library_pins_match_the_image_tags():
    # The one record of the images' libraries must name the transformers each image tag carries.
    gpu = dict(p.split("==") for p in profiles.IMAGE_LIBRARIES["gpu"])
    neuron = dict(p.split("==") for p in profiles.IMAGE_LIBRARIES["neuron"])
    assert gpu["transformers"] == profiles.HF_TRAINING["version"] == "4.56.2"
    assert f"transformers{neuron['transformers']}-" in profiles.NEURON_TRAINING_TAG
    assert profiles.image_requirements("gpu").splitlines() == list(profiles.IMAGE_LIBRARIES["gpu"])
