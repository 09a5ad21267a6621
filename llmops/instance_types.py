"""SageMaker ml.* instance facts: one table for config validation, sizing, volume keys and cost.

Standard library only (synth, CLI and runtime code may all read it). Sources: the EC2 instance-type
pages of each family (accelerators, memory, vCPUs, instance storage) and the SageMaker pricing
page, real-time inference, us-east-1, on-demand, as listed late 2026 (PRICE_SOURCE). Prices move:
the cost capability reads them as estimates, never as a bill.

``neuron`` accelerators are counted in NeuronCores (inf2/trn1: 2 cores per chip, 16 GiB each),
because tensor-parallel degrees on Neuron are given in cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PRICE_SOURCE = "aws.amazon.com/sagemaker/pricing real-time inference, us-east-1 on-demand, late 2026 (approximate)"
Accelerator = Literal["nvidia", "neuron", "none"]


@dataclass(frozen=True)
class InstanceType:
    name: str
    accelerator: Accelerator
    accelerator_name: str  # A10G, L4, L40S, A100, H100, Inferentia2, Trainium, "" for CPU
    accelerator_count: int  # GPUs, or NeuronCores on inf2/trn1
    accelerator_memory_gib: float  # per GPU / per NeuronCore
    vcpus: int
    memory_gib: int
    nvme: bool  # NVMe instance storage: SageMaker rejects a volume KMS key on these types
    price_per_hour: float  # USD, hosting, us-east-1

    @property
    def family(self) -> str:
        return self.name.split(".")[1]

    @property
    def total_accelerator_memory_gib(self) -> float:
        return self.accelerator_count * self.accelerator_memory_gib


def _gpu(family: str, gpu: str, mem: float, rows: list[tuple[str, int, int, int, float]]) -> list[InstanceType]:
    return [InstanceType(f"ml.{family}.{size}", "nvidia", gpu, n, mem, cpu, ram, True, price) for size, cpu, ram, n, price in rows]


def _cpu(family: str, rows: list[tuple[str, int, int, float]], nvme: bool = False) -> list[InstanceType]:
    return [InstanceType(f"ml.{family}.{size}", "none", "", 0, 0.0, cpu, ram, nvme, price) for size, cpu, ram, price in rows]


_ROWS: list[InstanceType] = [
    # NVIDIA A10G 24 GB, NVMe on every size.
    *_gpu("g5", "A10G", 24, [("xlarge", 4, 16, 1, 1.408), ("2xlarge", 8, 32, 1, 1.515), ("4xlarge", 16, 64, 1, 2.03),
                             ("8xlarge", 32, 128, 1, 3.06), ("12xlarge", 48, 192, 4, 7.09), ("16xlarge", 64, 256, 1, 5.12),
                             ("24xlarge", 96, 384, 4, 10.18), ("48xlarge", 192, 768, 8, 20.36)]),
    # NVIDIA L4 24 GB.
    *_gpu("g6", "L4", 24, [("xlarge", 4, 16, 1, 1.01), ("2xlarge", 8, 32, 1, 1.222), ("4xlarge", 16, 64, 1, 1.684),
                           ("8xlarge", 32, 128, 1, 2.611), ("12xlarge", 48, 192, 4, 5.752), ("16xlarge", 64, 256, 1, 4.469),
                           ("24xlarge", 96, 384, 4, 8.286), ("48xlarge", 192, 768, 8, 16.572)]),
    # NVIDIA L40S 48 GB.
    *_gpu("g6e", "L40S", 48, [("xlarge", 4, 32, 1, 2.337), ("2xlarge", 8, 64, 1, 2.818), ("4xlarge", 16, 128, 1, 3.781),
                              ("8xlarge", 32, 256, 1, 5.706), ("12xlarge", 48, 384, 4, 13.120), ("16xlarge", 64, 512, 1, 9.557),
                              ("24xlarge", 96, 768, 4, 18.236), ("48xlarge", 192, 1536, 8, 36.473)]),
    *_gpu("p4d", "A100", 40, [("24xlarge", 96, 1152, 8, 37.688)]),
    *_gpu("p4de", "A100", 80, [("24xlarge", 96, 1152, 8, 47.11)]),
    *_gpu("p5", "H100", 80, [("48xlarge", 192, 2048, 8, 113.07)]),
    # Inferentia2: 2 NeuronCores per chip, 32 GB per chip; EBS only.
    *[InstanceType(f"ml.inf2.{s}", "neuron", "Inferentia2", cores, 16, cpu, ram, False, price)
      for s, cpu, ram, cores, price in [("xlarge", 4, 16, 2, 0.99), ("8xlarge", 32, 128, 2, 2.36),
                                        ("24xlarge", 96, 384, 12, 7.79), ("48xlarge", 192, 768, 24, 15.58)]],
    # Trainium (training): 2 NeuronCores per chip, NVMe instance storage.
    *[InstanceType(f"ml.{f}.{s}", "neuron", "Trainium", cores, 16, cpu, ram, True, price)
      for f, s, cpu, ram, cores, price in [("trn1", "2xlarge", 8, 32, 2, 1.54), ("trn1", "32xlarge", 128, 512, 32, 24.72),
                                           ("trn1n", "32xlarge", 128, 512, 32, 28.50)]],
    # CPU families (EBS only).
    *_cpu("m5", [("large", 2, 8, 0.115), ("xlarge", 4, 16, 0.23), ("2xlarge", 8, 32, 0.461), ("4xlarge", 16, 64, 0.922),
                 ("12xlarge", 48, 192, 2.765), ("24xlarge", 96, 384, 5.53)]),
    *_cpu("c5", [("large", 2, 4, 0.119), ("xlarge", 4, 8, 0.238), ("2xlarge", 8, 16, 0.476), ("4xlarge", 16, 32, 0.952),
                 ("9xlarge", 36, 72, 2.142), ("18xlarge", 72, 144, 4.284)]),
    *_cpu("m6i", [("large", 2, 8, 0.121), ("xlarge", 4, 16, 0.242), ("2xlarge", 8, 32, 0.484), ("4xlarge", 16, 64, 0.968),
                  ("8xlarge", 32, 128, 1.935), ("12xlarge", 48, 192, 2.903), ("16xlarge", 64, 256, 3.871),
                  ("24xlarge", 96, 384, 5.806), ("32xlarge", 128, 512, 7.741)]),
    *_cpu("c6i", [("large", 2, 4, 0.102), ("xlarge", 4, 8, 0.204), ("2xlarge", 8, 16, 0.408), ("4xlarge", 16, 32, 0.816),
                  ("8xlarge", 32, 64, 1.632), ("12xlarge", 48, 96, 2.448), ("16xlarge", 64, 128, 3.264)]),
    *_cpu("m7i", [("large", 2, 8, 0.121), ("xlarge", 4, 16, 0.242), ("2xlarge", 8, 32, 0.484), ("4xlarge", 16, 64, 0.968)]),
    *_cpu("c7i", [("large", 2, 4, 0.107), ("xlarge", 4, 8, 0.214), ("2xlarge", 8, 16, 0.428), ("4xlarge", 16, 32, 0.857)]),
    *_cpu("r5", [("large", 2, 16, 0.151), ("xlarge", 4, 32, 0.302), ("2xlarge", 8, 64, 0.605), ("4xlarge", 16, 128, 1.21)]),
]
INSTANCE_TYPES: dict[str, InstanceType] = {row.name: row for row in _ROWS}

# Families per job kind (processing shares training's CPU families).
INFERENCE_FAMILIES = ("g5", "g6", "g6e", "p4d", "p4de", "p5", "inf2", "m5", "c5", "m6i", "c6i", "m7i", "c7i", "r5")
TRAINING_FAMILIES = ("g5", "g6", "g6e", "p4d", "p4de", "p5", "trn1", "trn1n", "m5", "c5")
PROCESSING_FAMILIES = ("m5", "m6i", "m7i", "c5", "c6i", "c7i", "r5")


def lookup(name: str) -> InstanceType | None:
    return INSTANCE_TYPES.get(name)


def names(families: tuple[str, ...]) -> list[str]:
    """Every listed type of these families, in table order."""
    return [row.name for row in _ROWS if row.family in families]


def unknown_type_message(name: str, families: tuple[str, ...]) -> str:
    """Why ``name`` is refused, with the families and the escape hatch."""
    family = name.split(".")[1] if name.count(".") == 2 else ""
    if family in families:
        sizes = ", ".join(n.split(".")[2] for n in names((family,)))
        hint = f"listed ml.{family} sizes: {sizes}"
    else:
        hint = f"allowed families: {', '.join('ml.' + f + '.*' for f in families)}"
    return (f"{name!r} is not a listed instance type ({hint}); for a type newer than the table, declare its facts "
            f"under instance_facts.{name!r} (accelerator, accelerator_count, accelerator_memory_gib, vcpus, memory_gib, nvme)")
