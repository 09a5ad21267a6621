"""Build ``llmops/inference_images.json`` from the SageMaker SDK's bundled image configs.

``python -m llmops.inference_images_build`` rewrites the committed table; the drift test
(``tests/llmops/inference/test_images.py``) rebuilds it and compares. Only this module and that test
import the SDK: synth reads the JSON (``llmops.inference_images``).

Per family: the newest version in the SDK config, the tag the SDK's ``image_uris.retrieve`` makes
for it (us-east-1, a representative instance type), the registry account per region, and the
inference AMI version its CUDA generation needs. AMI evidence: botocore's SageMaker model documents
``ProductionVariant.InferenceAmiVersion``: gpu-3-1 = driver 550 / CUDA 12.4, al2023 gpu-4-1 =
driver 580 / CUDA 13.0, neuron-2 = Neuron driver 2.19; a cuNNN image needs a driver of at least that
CUDA version (NVIDIA's minimum-driver table), so cu125..cu13x go to gpu-4-1.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

TABLE_PATH = Path(__file__).resolve().parent / "inference_images.json"
# family -> (SDK framework name, representative instance type, serving engine)
FAMILIES = {
    "djl-lmi": ("djl-lmi", "ml.g5.2xlarge", "LMI (DJL Serving) with vLLM"),
    "djl-tensorrtllm": ("djl-tensorrtllm", "ml.g5.2xlarge", "LMI (DJL Serving) with TensorRT-LLM"),
    "vllm": ("vllm", "ml.g5.2xlarge", "AWS vLLM deep learning container"),
    "tgi": ("huggingface-llm", "ml.g5.2xlarge", "Hugging Face text-generation-inference"),
    "tgi-neuronx": ("huggingface-llm-neuronx", "ml.inf2.xlarge", "TGI on Inferentia2 (optimum-neuron)"),
    "djl-neuronx": ("djl-neuronx", "ml.inf2.xlarge", "LMI (DJL Serving) on Inferentia2 (transformers-neuronx)"),
    "tei": ("huggingface-tei", "ml.g5.xlarge", "Hugging Face text-embeddings-inference, GPU"),
    "tei-cpu": ("huggingface-tei-cpu", "ml.m5.xlarge", "Hugging Face text-embeddings-inference, CPU"),
}
AMI_CUDA_12_4 = "al2-ami-sagemaker-inference-gpu-3-1"
AMI_CUDA_13_0 = "al2023-ami-sagemaker-inference-gpu-4-1"
AMI_NEURON = "al2-ami-sagemaker-inference-neuron-2"


def config_dir() -> Path:
    spec = importlib.util.find_spec("sagemaker.core")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the pipeline-build extra (sagemaker SDK) is not installed: pip install -e '.[pipeline-build]'")
    return Path(list(spec.submodule_search_locations)[0]) / "image_uri_config"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


def ami_for(tag: str, accelerator: str) -> str | None:
    if accelerator == "neuron":
        return AMI_NEURON
    match = re.search(r"cu(\d\d)(\d)", tag)
    if accelerator == "cpu" or not match:
        return None
    cuda = (int(match[1]), int(match[2]))
    return AMI_CUDA_12_4 if cuda <= (12, 4) else AMI_CUDA_13_0


def build() -> dict:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("SAGEMAKER_TELEMETRY_OPT_OUT", "true")
    from sagemaker.core import image_uris

    folder = config_dir()
    table: dict = {"source": "sagemaker SDK image_uri_config", "families": {}}
    for family, (framework, instance_type, engine) in FAMILIES.items():
        raw = json.loads((folder / f"{framework}.json").read_text(encoding="utf-8"))
        scope = raw.get("inference", raw)
        version = max(scope["versions"], key=_version_key)
        uri = image_uris.retrieve(framework, "us-east-1", version=version, instance_type=instance_type, image_scope="inference")
        repo_tag = uri.split("/", 1)[1]
        repository, tag = repo_tag.split(":", 1)
        accelerator = "neuron" if instance_type.startswith("ml.inf") else ("cpu" if family == "tei-cpu" else "nvidia")
        table["families"][family] = {
            "framework": framework,
            "engine": engine,
            "version": version,
            "repository": repository,
            "tag": tag,
            "accelerator": accelerator,
            "inference_ami_version": ami_for(tag, accelerator),
            "registries": dict(sorted(scope["versions"][version]["registries"].items())),
        }
    table["sdk_version"] = _sdk_version()
    return table


def _sdk_version() -> str:
    from importlib.metadata import version

    return version("sagemaker")


def render(table: dict) -> str:
    return json.dumps(table, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    TABLE_PATH.write_text(render(build()), encoding="utf-8")
    print(f"wrote {TABLE_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
