"""Sync-at-deploy of prompts/*.yaml: idempotent, never rewrites a version, all-or-nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lambdas.prompt_catalog_sync import handler as sync_handler
from lambdas.runtime.prompt_catalog.errors import PromptValidationError
from lambdas.runtime.prompt_catalog.sync import sync_directory

REPO_PROMPTS = Path(__file__).resolve().parents[3] / "prompts"


@pytest.fixture
def prompts_dir(tmp_path):
    return Path(shutil.copytree(REPO_PROMPTS, tmp_path / "prompts"))


def versions(catalog) -> list[tuple[str, str]]:
    return sorted((i["prompt_id"]["S"], i["sk"]["S"]) for i in catalog.items() if i["sk"]["S"].startswith("V#"))


def test_sync_twice_creates_no_new_versions(catalog, prompts_dir):
    store = catalog.store()
    first = sync_directory(store, prompts_dir)
    snapshot = catalog.items()
    second = sync_directory(store, prompts_dir)
    assert sorted(first.created) == ["rag-answer@v1", "reasoned-answer@v1", "ticket-triage@v1"]
    assert second.created == [] and second.aliases_moved == []
    assert sorted(second.unchanged) == sorted(first.created)
    assert versions(catalog) == [(p, "V#0000000001") for p in ("rag-answer", "reasoned-answer", "ticket-triage")]
    # A no-op sync writes nothing at all: no version, no alias revision, no metadata timestamp.
    assert catalog.items() == snapshot
    assert store.get_alias("rag-answer", "prod").revision == 1


def test_changed_file_adds_a_version_and_moves_its_aliases(catalog, prompts_dir):
    store = catalog.store()
    sync_directory(store, prompts_dir)
    v1 = store.get_version("rag-answer", 1)
    path = prompts_dir / "rag-answer.yaml"
    path.write_text(path.read_text().replace("temperature: 0.1", "temperature: 0.2"))
    report = sync_directory(store, prompts_dir)
    assert report.created == ["rag-answer@v2"]
    assert report.aliases_moved == ["rag-answer:prod -> v2"]
    assert store.get_version("rag-answer", 1) == v1  # the old version is untouched
    assert store.get_version("rag-answer", 2).content.model_parameters.temperature == 0.2
    alias = store.get_alias("rag-answer", "prod")
    assert (alias.targets[0].version, alias.revision) == (2, 2)


def test_an_invalid_file_fails_the_sync_before_any_write(catalog, prompts_dir):
    (prompts_dir / "broken.yaml").write_text("id: broken\ndescription: x\ntemplate: 'Hi {name'\n")
    with pytest.raises(PromptValidationError) as info:
        sync_directory(catalog.store(), prompts_dir)
    assert "broken.yaml: template: template does not parse" in str(info.value)
    assert catalog.items() == []


def test_custom_resource_events(catalog, prompts_dir):
    store = catalog.store()
    created = sync_handler.on_event({"RequestType": "Create", "StackId": "stack-1"}, store, prompts_dir)
    assert created["Data"] == {"Created": 3, "Unchanged": 0, "AliasesMoved": 3}
    physical = created["PhysicalResourceId"]
    updated = sync_handler.on_event({"RequestType": "Update", "PhysicalResourceId": physical}, store, prompts_dir)
    assert updated == {"PhysicalResourceId": physical, "Data": {"Created": 0, "Unchanged": 3, "AliasesMoved": 0}}
    before = catalog.items()
    assert sync_handler.on_event({"RequestType": "Delete", "PhysicalResourceId": physical}, store, prompts_dir) == {"PhysicalResourceId": physical}
    assert len(catalog.items()) == len(before)  # versions outlive the stack


def test_bundled_prompts_dir_is_the_repo_prompts_folder():
    # In the Lambda bundle prompts/ sits beside lambdas/, as in the repository.
    assert sync_handler.DEFAULT_PROMPTS_DIR == REPO_PROMPTS


def test_metadata_only_change_updates_the_prompt_not_its_versions(catalog, prompts_dir):
    store = catalog.store()
    sync_directory(store, prompts_dir)
    path = prompts_dir / "ticket-triage.yaml"
    path.write_text(path.read_text().replace("owner: platform-team", "owner: support-team"))
    report = sync_directory(store, prompts_dir)
    assert report.created == [] and "ticket-triage@v1" in report.unchanged
    assert store.get_prompt("ticket-triage").owner == "support-team"
    assert store.latest_version_number("ticket-triage") == 1
