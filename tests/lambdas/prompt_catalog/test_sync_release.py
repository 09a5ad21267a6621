"""Prompt promotion by the release manifest and prompt A/B weights, on the real sync code and moto DynamoDB."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lambdas.prompt_catalog_sync import handler as sync_handler
from lambdas.runtime.prompt_catalog.files import load_prompt_dir
from lambdas.runtime.prompt_catalog.sync import PromotionMismatch, sync_directory

REPO_PROMPTS = Path(__file__).resolve().parents[3] / "prompts"


# As deployed: the sync creates pinned versions through the version writer (at_version on the wire).
pytestmark = pytest.mark.usefixtures("writer_lambda")

@pytest.fixture
def prompts_dir(tmp_path):
    return Path(shutil.copytree(REPO_PROMPTS, tmp_path / "prompts"))


def file_hash(prompts_dir: Path, prompt_id: str) -> str:
    (f,) = [f for f in load_prompt_dir(prompts_dir).files if f.prompt_id == prompt_id]
    return f.content.content_hash()


def edit(prompts_dir: Path, old: str, new: str) -> None:
    path = prompts_dir / "rag-answer.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def targets(store, prompt_id: str, alias: str) -> list[tuple[int, int]]:
    return [(t.version, t.weight) for t in store.get_alias(prompt_id, alias).targets]


def test_a_fresh_catalog_gets_the_pinned_version_under_its_number_and_the_alias(catalog, prompts_dir):
    store = catalog.store()
    pins = {"rag-answer": {"prod": {"version": 4, "content_hash": file_hash(prompts_dir, "rag-answer")}}}
    report = sync_directory(store, prompts_dir, pins=pins)
    assert "rag-answer@v4" in report.created
    assert store.get_version("rag-answer", 4).content_hash == pins["rag-answer"]["prod"]["content_hash"]
    assert targets(store, "rag-answer", "prod") == [(4, 100)]
    # Unpinned prompts follow the file rules.
    assert "ticket-triage@v1" in report.created
    again = sync_directory(store, prompts_dir, pins=pins)
    assert again.created == [] and again.aliases_moved == []


def test_the_alias_follows_the_pin_even_when_the_api_moved_it(catalog, prompts_dir):
    store = catalog.store()
    sync_directory(store, prompts_dir)  # v1 from the file, prod -> v1
    v1_hash = store.get_version("rag-answer", 1).content_hash
    edit(prompts_dir, "temperature: 0.1", "temperature: 0.3")
    sync_directory(store, prompts_dir)  # v2, prod -> v2
    alias = store.get_alias("rag-answer", "prod")
    store.move_alias("rag-answer", "prod", [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}],
                     expected_revision=alias.revision, updated_by="alice")
    report = sync_directory(store, prompts_dir, pins={"rag-answer": {"prod": {"version": 1, "content_hash": v1_hash}}})
    assert targets(store, "rag-answer", "prod") == [(1, 100)]
    assert report.aliases_moved == ["rag-answer:prod -> v1"]
    assert report.aliases_reset and "alice" in report.aliases_reset[0]
    assert report.created == []  # v1 already holds the pinned content


def test_a_version_with_other_content_under_the_pinned_number_stops_the_sync_naming_both_hashes(catalog, prompts_dir):
    store = catalog.store()
    sync_directory(store, prompts_dir)
    held = store.get_version("rag-answer", 1).content_hash
    wanted = "a" * 64
    before = catalog.items()
    with pytest.raises(PromotionMismatch) as err:
        sync_directory(store, prompts_dir, pins={"rag-answer": {"prod": {"version": 1, "content_hash": wanted}}})
    message = str(err.value)
    assert "rag-answer v1" in message and wanted in message and held in message
    assert catalog.items() == before  # nothing written


def test_a_pin_the_files_no_longer_hold_stops_the_sync(catalog, prompts_dir):
    store = catalog.store()
    pinned = file_hash(prompts_dir, "rag-answer")
    edit(prompts_dir, "temperature: 0.1", "temperature: 0.3")
    with pytest.raises(PromotionMismatch) as err:
        sync_directory(store, prompts_dir, pins={"rag-answer": {"prod": {"version": 2, "content_hash": pinned}}})
    message = str(err.value)
    assert "rag-answer v2" in message and pinned in message and file_hash(prompts_dir, "rag-answer") in message
    assert catalog.items() == []


def test_without_a_manifest_the_ab_safe_rules_still_keep_an_api_split(catalog, prompts_dir):
    store = catalog.store()
    sync_directory(store, prompts_dir)
    edit(prompts_dir, "temperature: 0.1", "temperature: 0.3")
    sync_directory(store, prompts_dir)
    alias = store.get_alias("rag-answer", "prod")
    store.move_alias("rag-answer", "prod", [{"version": 1, "weight": 80}, {"version": 2, "weight": 20}],
                     expected_revision=alias.revision, updated_by="alice")
    edit(prompts_dir, "temperature: 0.3", "temperature: 0.4")
    report = sync_directory(store, prompts_dir)
    assert report.created == ["rag-answer@v3"] and report.aliases_kept
    assert targets(store, "rag-answer", "prod") == [(1, 80), (2, 20)]


def test_a_prompt_ab_experiment_sets_the_alias_weights_and_a_winner_takes_all(catalog, prompts_dir):
    store = catalog.store()
    sync_directory(store, prompts_dir)
    edit(prompts_dir, "temperature: 0.1", "temperature: 0.3")
    experiment = {"name": "answer-temp", "prompt": "rag-answer", "alias": "prod",
                  "targets": [{"version": 1, "weight": 70}, {"version": 2, "weight": 30}]}
    report = sync_directory(store, prompts_dir, experiments=[experiment])
    assert report.created == ["rag-answer@v2"]
    assert sorted(targets(store, "rag-answer", "prod")) == [(1, 70), (2, 30)]
    assert "experiment answer-temp" in report.aliases_moved[-1]
    assert "experiment answer-temp" in store.get_alias("rag-answer", "prod").updated_by
    winner = {**experiment, "targets": [{"version": 2, "weight": 100}]}
    sync_directory(store, prompts_dir, experiments=[winner])
    assert targets(store, "rag-answer", "prod") == [(2, 100)]


def test_an_experiment_arm_naming_a_missing_version_stops_the_sync(catalog, prompts_dir):
    store = catalog.store()
    experiment = {"name": "answer-temp", "prompt": "rag-answer", "alias": "prod",
                  "targets": [{"version": 1, "weight": 50}, {"version": 9, "weight": 50}]}
    with pytest.raises(PromotionMismatch, match="experiment answer-temp: rag-answer:prod: .*no version 9"):
        sync_directory(store, prompts_dir, experiments=[experiment])


def test_the_custom_resource_reads_pins_and_experiments_from_its_properties(catalog, prompts_dir):
    store = catalog.store()
    pins = {"rag-answer": {"prod": {"version": 3, "content_hash": file_hash(prompts_dir, "rag-answer")}}}
    event = {"RequestType": "Create", "StackId": "stack-1",
             "ResourceProperties": {"ReleasePins": json.dumps(pins), "Release": "r1"}}
    result = sync_handler.on_event(event, store, prompts_dir)
    assert result["Data"]["Created"] >= 1
    assert targets(store, "rag-answer", "prod") == [(3, 100)]
    bad = {"rag-answer": {"prod": {"version": 3, "content_hash": "b" * 64}}}
    with pytest.raises(PromotionMismatch, match="rag-answer v3"):
        sync_handler.on_event({**event, "RequestType": "Update", "PhysicalResourceId": result["PhysicalResourceId"],
                               "ResourceProperties": {"ReleasePins": json.dumps(bad)}}, store, prompts_dir)
