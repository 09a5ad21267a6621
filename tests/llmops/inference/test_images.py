"""The committed image table matches a fresh build from the installed SageMaker SDK's configs."""

from __future__ import annotations

import importlib.util
import json

import pytest

from llmops.inference import IMAGE_TABLE_PATH, image_table

if importlib.util.find_spec("sagemaker") is None:
    pytest.skip("the pipeline-build extra (sagemaker SDK) is not installed", allow_module_level=True)


def test_committed_table_matches_a_fresh_build():
    from llmops.inference_images_build import build, render

    assert IMAGE_TABLE_PATH.read_text(encoding="utf-8") == render(build()), (
        "llmops/inference_images.json is stale: run `python -m llmops.inference_images_build` and commit it")


def test_table_shape_and_amis():
    families = image_table()["families"]
    assert set(families) == {"djl-lmi", "djl-tensorrtllm", "vllm", "tgi", "tgi-neuronx", "djl-neuronx", "tei", "tei-cpu"}
    for name, row in families.items():
        assert row["registries"]["us-east-1"].isdigit() and ":" not in row["tag"], name
        if row["accelerator"] == "neuron":
            assert row["inference_ami_version"] == "al2-ami-sagemaker-inference-neuron-2"
        elif "cu13" in row["tag"] or "cu128" in row["tag"]:
            assert row["inference_ami_version"] == "al2023-ami-sagemaker-inference-gpu-4-1"
        elif "cu12" in row["tag"]:
            assert row["inference_ami_version"] == "al2-ami-sagemaker-inference-gpu-3-1"
        else:
            assert row["inference_ami_version"] is None and row["accelerator"] == "cpu"


def test_ami_rule():
    from llmops.inference_images_build import ami_for

    assert ami_for("0.28.0-lmi10.0.0-cu124", "nvidia") == "al2-ami-sagemaker-inference-gpu-3-1"
    assert ami_for("0.33.0-tensorrtllm0.21.0-cu128", "nvidia") == "al2023-ami-sagemaker-inference-gpu-4-1"
    assert ami_for("x-cu130", "nvidia") == "al2023-ami-sagemaker-inference-gpu-4-1"
    assert ami_for("2.0.1-tei1.8.2-cpu-py310-ubuntu22.04", "cpu") is None
    assert json.loads(IMAGE_TABLE_PATH.read_text())["sdk_version"]
