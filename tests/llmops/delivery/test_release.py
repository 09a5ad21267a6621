"""The release manifest schema, with good and bad examples, and the deployment checks."""

from __future__ import annotations

import copy
import json

import pytest

from llmops.config import REPO_ROOT
from llmops.delivery.release import ReleaseError, deployment_problems, load_release, parse_release
from tests.helpers import config_with

GOOD = json.loads((REPO_ROOT / "release.json").read_text())


def _with(**changes):
    raw = copy.deepcopy(GOOD)
    for path, value in changes.items():
        node = raw
        keys = path.split("__")
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return raw


def test_the_committed_example_is_valid():
    manifest = parse_release(GOOD)
    assert manifest.models["assistant"].version == 1 and manifest.embedding.dimension == 384
    assert deployment_problems(manifest, config_with("dev")) == []


@pytest.mark.parametrize(
    "raw, message",
    [
        (_with(schema_version=2), "schema_version"),
        (_with(models__assistant__model_package_arn="arn:aws:sagemaker:us-east-1:1:model-package/x"), "model_package_arn"),
        (_with(models__assistant__version=2), "version: 2 differs from the ARN's version 1"),
        (_with(models__assistant__approval_status="Maybe"), "models.assistant.approval_status"),
        (_with(prompts__rag_answer={}), None),
        (_with(images={"llm": "nginx:latest"}), "images.llm: not an ECR image URI"),
        (_with(embedding={"model": "m", "dimension": "384", "index": "i"}), "embedding.dimension"),
        (_with(surprise=True), "surprise"),
    ],
)
def test_bad_manifests_are_refused_naming_the_entry(raw, message):
    if message is None:
        parse_release(raw)  # an extra prompt with no aliases is allowed
        return
    with pytest.raises(ReleaseError) as err:
        parse_release(raw)
    assert message in str(err.value)


def test_a_package_that_is_not_approved_is_refused():
    manifest = parse_release(_with(models__assistant__approval_status="PendingManualApproval"))
    problems = deployment_problems(manifest, config_with("dev"))
    assert any("models.assistant: model package" in p and "is PendingManualApproval, not Approved" in p for p in problems)


def test_a_package_of_another_group_or_use_case_is_refused():
    arn = "arn:aws:sagemaker:us-east-1:000000000000:model-package/llmops-dev-other/1"
    problems = deployment_problems(parse_release(_with(models__assistant__model_package_arn=arn)), config_with("dev"))
    assert any("package group 'llmops-dev-other' is not the use case's group 'llmops-dev-assistant'" in p for p in problems)
    raw = _with()
    raw["models"]["triage"] = raw["models"].pop("assistant")
    problems = deployment_problems(parse_release(raw), config_with("dev"))
    assert any(p.startswith("models.triage: no such fine-tuning use case") for p in problems)


def test_metrics_below_the_threshold_are_refused():
    problems = deployment_problems(parse_release(_with(models__assistant__metrics={"rouge_l": 0.1})), config_with("dev"))
    assert any("models.assistant.metrics.rouge_l: 0.1 is below the threshold 0.2" in p for p in problems)


def test_a_prompt_version_absent_from_the_files_is_refused():
    manifest = parse_release(_with(prompts__rag_answer={"prod": {"version": 3, "content_hash": "0" * 64}}))
    hashes = {"rag-answer": GOOD["prompts"]["rag-answer"]["prod"]["content_hash"]}
    problems = deployment_problems(manifest, config_with("dev"), prompt_hashes=hashes)
    assert any(p.startswith("prompts.rag_answer: no prompts/rag_answer.yaml") for p in problems)
    raw = _with()
    raw["prompts"]["rag-answer"]["prod"]["content_hash"] = "0" * 64
    problems = deployment_problems(parse_release(raw), config_with("dev"), prompt_hashes=hashes)
    assert any("prompts.rag-answer.prod: version 1 (hash 000000000000) is not the content of prompts/rag-answer.yaml" in p
               for p in problems)


def test_an_embedding_dimension_that_does_not_match_the_index_is_refused():
    manifest = parse_release(_with(embedding={"model": "big", "dimension": 1024, "index": "i"}))
    problems = deployment_problems(manifest, config_with("dev"))
    assert any("embedding.dimension: big gives 1024 values but environments.dev.vector_store.dimension is 384" in p
               for p in problems)


def test_load_release_names_a_missing_or_broken_file(tmp_path):
    with pytest.raises(ReleaseError, match="no release manifest"):
        load_release(tmp_path / "release.json")
    (tmp_path / "release.json").write_bytes(b"\xff{")
    with pytest.raises(ReleaseError, match="not UTF-8 JSON"):
        load_release(tmp_path / "release.json")
