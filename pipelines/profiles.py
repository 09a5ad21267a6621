"""Hardware profiles and the pinned container images of the fine-tuning pipeline.

Imported at synth (no SageMaker SDK here): it decides which image, distribution and parameter
choices an environment's pipeline gets, and fingerprints those inputs so a stale compiled
definition (``pipelines/definitions/<env>.json``) fails synth instead of deploying silently.

Standard library only, and no ``llmops`` import: the environment is read through its attributes
(``llmops.config.EnvironmentConfig`` is what synth and ``llmops pipelines build`` pass), so the
dependency runs one way, from synth-time code to ``pipelines/``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

# Instance families with a fine-tuning profile (``llmops.config`` validates against these).
FINE_TUNING_GPU_FAMILIES = ("g5", "g6", "g6e", "p4d", "p4de", "p5")
FINE_TUNING_TRAINIUM_FAMILIES = ("trn1", "trn1n")


class ProfileError(ValueError):
    """The environment asks for something no fine-tuning profile supports; the message names the field."""

# Hugging Face training DLC resolved through the SDK (``image_uris.retrieve("huggingface", ...)``).
HF_TRAINING = {"version": "4.56.2", "base_framework_version": "pytorch2.8.0", "py_version": "py312"}
# TGI for serving registered packages (resolved through the SDK).
TGI_VERSION = "3.3.6"
DJL_LMI_VERSION = "0.33.0"

# The SDK cannot resolve Neuron images for ml.trn* (``retrieve`` rejects non-pytorch frameworks
# there), so the Trainium training image is pinned here, in this one reviewed place. Values come
# from the SDK's bundled ``image_uri_config/huggingface-neuronx.json`` (training, transformers
# 4.55.4, pytorch 2.7.0, SDK 2.26.0); ``tests/pipelines/test_profiles.py`` cross-checks them.
NEURON_TRAINING_REPOSITORY = "huggingface-pytorch-training-neuronx"
NEURON_TRAINING_TAG = "2.7.0-transformers4.55.4-neuronx-py310-sdk2.26.0-ubuntu22.04"
NEURON_TRAINING_REGISTRIES = {
    "ap-northeast-1": "763104351884",
    "ap-south-1": "763104351884",
    "ap-southeast-1": "763104351884",
    "ap-southeast-2": "763104351884",
    "eu-central-1": "763104351884",
    "eu-west-1": "763104351884",
    "eu-west-3": "763104351884",
    "sa-east-1": "763104351884",
    "us-east-1": "763104351884",
    "us-east-2": "763104351884",
    "us-west-2": "763104351884",
}

# The Python libraries of the training images the step code must work with: the one record of them.
# transformers is the version in each image tag above; the others are the releases that pair with
# it. ``make step-compat`` runs the step tests against each set (tests/pipelines/steps), beside the
# newer versions of the platform's own virtualenv, so an API that only the newer one has fails there.
IMAGE_LIBRARIES = {
    "gpu": ("transformers==4.56.2", "huggingface_hub==0.35.3", "tokenizers==0.22.1", "peft==0.17.1", "accelerate==1.10.1"),
    "neuron": ("transformers==4.55.4", "huggingface_hub==0.34.4", "tokenizers==0.21.4", "peft==0.17.0", "accelerate==1.10.0"),
}

# Instance types a run may pick through the TrainingInstanceType parameter, per profile kind:
# the image is fixed at build time, so a run can only move within the same accelerator kind.
GPU_INSTANCE_TYPES = (
    "ml.g5.2xlarge", "ml.g5.12xlarge", "ml.g5.48xlarge",
    "ml.g6.2xlarge", "ml.g6.12xlarge", "ml.g6.48xlarge",
    "ml.g6e.2xlarge", "ml.g6e.12xlarge", "ml.g6e.48xlarge",
    "ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p5.48xlarge",
)
TRAINIUM_INSTANCE_TYPES = ("ml.trn1.2xlarge", "ml.trn1.32xlarge", "ml.trn1n.32xlarge")

# Accelerator devices per node: NVIDIA GPUs, or NeuronCores on Trainium (2 per Trainium chip).
# torchrun starts one training process per device (the training toolkit counts them on the node).
DEVICES_PER_INSTANCE = {
    "ml.g5.2xlarge": 1, "ml.g5.12xlarge": 4, "ml.g5.48xlarge": 8,
    "ml.g6.2xlarge": 1, "ml.g6.12xlarge": 4, "ml.g6.48xlarge": 8,
    "ml.g6e.2xlarge": 1, "ml.g6e.12xlarge": 4, "ml.g6e.48xlarge": 8,
    "ml.p4d.24xlarge": 8, "ml.p4de.24xlarge": 8, "ml.p5.48xlarge": 8,
    "ml.trn1.2xlarge": 2, "ml.trn1.32xlarge": 32, "ml.trn1n.32xlarge": 32,
}
# Sizes of the g families with more than one GPU (every other g size has one).
_MULTI_GPU_SIZES = {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8}


def devices_per_instance(instance_type: str) -> int:
    """GPUs (or NeuronCores) of one ``ml.*`` instance of a fine-tuning family."""
    if instance_type in DEVICES_PER_INSTANCE:
        return DEVICES_PER_INSTANCE[instance_type]
    family, size = instance_type.split(".")[1:3]
    if family.startswith("g"):
        return _MULTI_GPU_SIZES.get(size, 1)
    if family.startswith("trn"):
        return 2 if size == "2xlarge" else 32
    return 8  # p4d / p4de / p5 come in one 8-GPU size


@dataclass(frozen=True)
class HardwareProfile:
    kind: str  # "gpu" | "trainium"
    instance_type: str
    instance_count: int
    distribution: str  # "ddp" | "fsdp"
    allowed_instance_types: tuple[str, ...]
    devices_per_node: int  # of instance_type; a run may pick another allowed type

    @property
    def distributed(self) -> bool:
        """torchrun with one process per device: on whenever some node the run may get has >1 device."""
        return self.instance_count > 1 or any(devices_per_instance(t) > 1 for t in self.allowed_instance_types)

    @property
    def processes(self) -> int:
        return self.instance_count * self.devices_per_node


def hardware_profile(env: Any) -> HardwareProfile:
    ft = env.fine_tuning
    instance_type = ft.instance_type or env.instances.training.type
    count = ft.instance_count or env.instances.training.count
    family = instance_type.split(".")[1]
    field = "fine_tuning.instance_type" if ft.instance_type else "instances.training.type"
    if family in FINE_TUNING_TRAINIUM_FAMILIES:
        kind, allowed = "trainium", TRAINIUM_INSTANCE_TYPES
        if ft.strategy == "qlora":
            raise ProfileError(f"environments.{env.name}.fine_tuning.strategy: qlora needs CUDA GPUs; {instance_type} is Trainium")
        if env.region and env.region not in NEURON_TRAINING_REGISTRIES:
            raise ProfileError(
                f"environments.{env.name}.region: no pinned Neuron training image for {env.region}; "
                f"allowed: {', '.join(sorted(NEURON_TRAINING_REGISTRIES))}"
            )
    elif family in FINE_TUNING_GPU_FAMILIES:
        kind, allowed = "gpu", GPU_INSTANCE_TYPES
    else:
        raise ProfileError(
            f"environments.{env.name}.{field}: {instance_type!r} has no fine-tuning profile; allowed families: "
            + ", ".join(f"ml.{f}.*" for f in FINE_TUNING_GPU_FAMILIES + FINE_TUNING_TRAINIUM_FAMILIES)
        )
    if instance_type not in allowed:
        allowed = tuple(sorted(set(allowed) | {instance_type}))
    return HardwareProfile(kind, instance_type, count, ft.distribution, allowed, devices_per_instance(instance_type))


def image_requirements(kind: str) -> str:
    """``IMAGE_LIBRARIES[kind]`` as requirement lines (``python -m pipelines.profiles gpu``)."""
    return "\n".join(IMAGE_LIBRARIES[kind]) + "\n"


def neuron_training_image(region: str) -> str:
    try:
        account = NEURON_TRAINING_REGISTRIES[region]
    except KeyError:
        raise ProfileError(f"region: no pinned Neuron training image for {region}") from None
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{NEURON_TRAINING_REPOSITORY}:{NEURON_TRAINING_TAG}"


def pipeline_name(env: Any, use_case: str) -> str:
    return f"{env.name_prefix}-ft-{use_case}"


def model_package_group_name(env: Any, use_case: str) -> str:
    return f"{env.name_prefix}-{use_case}"


def definition_inputs(env: Any) -> dict:
    """Everything from the config that shapes an environment's pipeline definitions."""
    if not env.region:
        raise ProfileError(f"environments.{env.name}.region: fine-tuning needs a region (training image URIs are regional)")
    return {
        "region": env.region,
        "name_prefix": env.name_prefix,
        "hardware": asdict(hardware_profile(env)),
        "inference_instance_type": env.instances.inference.type,  # recorded on registered packages
        "fine_tuning": env.fine_tuning.model_dump(mode="json", exclude={"reader_accounts"}),
        "images": {
            "hf_training": HF_TRAINING,
            "tgi": TGI_VERSION,
            "djl_lmi": DJL_LMI_VERSION,
            "neuron": [NEURON_TRAINING_REPOSITORY, NEURON_TRAINING_TAG],
        },
    }


def fingerprint(env: Any) -> str:
    canonical = json.dumps(definition_inputs(env), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


if __name__ == "__main__":
    import sys

    sys.stdout.write(image_requirements(sys.argv[1]))
