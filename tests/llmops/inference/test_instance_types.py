"""The instance facts table: complete rows, the figures sizing and volume keys rely on."""

from __future__ import annotations

import pytest

from llmops.instance_types import INFERENCE_FAMILIES, INSTANCE_TYPES, TRAINING_FAMILIES, lookup, names, unknown_type_message


def test_every_family_the_platform_allows_has_rows():
    for family in set(INFERENCE_FAMILIES) | set(TRAINING_FAMILIES):
        assert names((family,)), family


@pytest.mark.parametrize("name", sorted(INSTANCE_TYPES))
def test_rows_are_consistent(name):
    row = INSTANCE_TYPES[name]
    assert row.name == name and row.vcpus >= 2 and row.memory_gib >= 4 and row.price_per_hour > 0
    if row.accelerator == "none":
        assert row.accelerator_count == 0 and row.accelerator_memory_gib == 0
    else:
        assert row.accelerator_count >= 1 and row.accelerator_memory_gib >= 16


@pytest.mark.parametrize("name, kind, count, memory, nvme", [
    ("ml.g5.2xlarge", "nvidia", 1, 24, True),
    ("ml.g5.12xlarge", "nvidia", 4, 24, True),
    ("ml.g5.48xlarge", "nvidia", 8, 24, True),
    ("ml.g6e.xlarge", "nvidia", 1, 48, True),
    ("ml.p4d.24xlarge", "nvidia", 8, 40, True),
    ("ml.p4de.24xlarge", "nvidia", 8, 80, True),
    ("ml.p5.48xlarge", "nvidia", 8, 80, True),
    ("ml.inf2.xlarge", "neuron", 2, 16, False),
    ("ml.inf2.48xlarge", "neuron", 24, 16, False),
    ("ml.trn1.32xlarge", "neuron", 32, 16, True),
    ("ml.m5.xlarge", "none", 0, 0, False),
])
def test_known_figures(name, kind, count, memory, nvme):
    row = lookup(name)
    assert (row.accelerator, row.accelerator_count, row.accelerator_memory_gib, row.nvme) == (kind, count, memory, nvme)


def test_unknown_type_message_names_sizes_and_the_escape_hatch():
    message = unknown_type_message("ml.g5.3xlarge", INFERENCE_FAMILIES)
    assert "2xlarge" in message and "instance_facts" in message
    assert "allowed families" in unknown_type_message("ml.x9.huge", INFERENCE_FAMILIES)
