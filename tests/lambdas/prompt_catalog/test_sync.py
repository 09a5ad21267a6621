"""Sync-at-deploy of prompts/*.yaml: idempotent, never rewrites a version, all-or-nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lambdas.prompt_catalog_sync import handler as sync_handler
from lambdas.runtime.prompt_catalog.errors import PromptValidationError
from lambdas.runtime.prompt_catalog.sync import sync_directory

# As deployed: the sync (and the API) create versions through the writer function, which alone holds PutItem.
pytestmark = pytest.mark.usefixtures("writer_lambda")

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
    assert created["Data"] == {"Created": 3, "Unchanged": 0, "AliasesMoved": 3, "AliasesKept": 0}
    physical = created["PhysicalResourceId"]
    updated = sync_handler.on_event({"RequestType": "Update", "PhysicalResourceId": physical}, store, prompts_dir)
    assert updated == {"PhysicalResourceId": physical, "Data": {"Created": 0, "Unchanged": 3, "AliasesMoved": 0, "AliasesKept": 0}}
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


# ---- A/B tests and API work survive a deploy ----

API_USER = "arn:aws:iam::123456789012:user/analyst"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _api_version(store, prompt_id: str, note: str) -> int:
    current = store.get_version(prompt_id, store.latest_version_number(prompt_id)).content
    data = current.model_dump(mode="json")
    data["model_parameters"]["max_tokens"] = 77
    from lambdas.runtime.prompt_catalog.model import parse_content

    version, _ = store.create_version(prompt_id, parse_content(data), change_note=note, author=API_USER)
    return version.version


def _split(store, prompt_id: str, first: int, second: int) -> None:
    alias = store.get_alias(prompt_id, "prod")
    store.move_alias(prompt_id, "prod", [{"version": first, "weight": 90}, {"version": second, "weight": 10}],
                     expected_revision=alias.revision, updated_by=API_USER)


def _targets(store, prompt_id: str) -> list[tuple[int, int]]:
    return [(t.version, t.weight) for t in store.get_alias(prompt_id, "prod").targets]


def test_editing_one_file_leaves_an_ab_split_and_api_versions_of_another_alone(catalog, prompts_dir):
    store = catalog.store()
    sync_directory(store, prompts_dir)
    v2 = _api_version(store, "ticket-triage", "candidate from the API")
    _split(store, "ticket-triage", 1, v2)
    _edit(prompts_dir / "rag-answer.yaml", "temperature: 0.1", "temperature: 0.3")
    report = sync_directory(store, prompts_dir)
    assert report.created == ["rag-answer@v2"]
    assert report.aliases_moved == ["rag-answer:prod -> v2"]
    # The A/B test goes on: no new ticket-triage version, the 90/10 split is intact (and reported as kept).
    assert store.latest_version_number("ticket-triage") == 2
    assert _targets(store, "ticket-triage") == [(1, 90), (2, 10)]
    assert "ticket-triage@v1" in report.unchanged
    assert [k.split(" ")[0] for k in report.aliases_kept] == ["ticket-triage:prod"]


def test_an_alias_moved_through_the_api_is_kept_and_reported_when_its_file_changes(catalog, prompts_dir):
    store = catalog.store()
    sync_directory(store, prompts_dir)
    v2 = _api_version(store, "ticket-triage", "candidate")
    _split(store, "ticket-triage", 1, v2)
    _edit(prompts_dir / "ticket-triage.yaml", "max_tokens: 5", "max_tokens: 6")
    report = sync_directory(store, prompts_dir)
    assert report.created == ["ticket-triage@v3"]
    assert report.aliases_moved == []
    assert _targets(store, "ticket-triage") == [(1, 90), (2, 10)]
    [kept] = report.aliases_kept
    assert kept.startswith("ticket-triage:prod kept at v1 90% + v2 10% (moved by arn:aws:iam::123456789012:user/analyst")
    assert "the file's version is v3" in kept
    # Deploying again changes nothing and reports it again.
    again = sync_directory(store, prompts_dir)
    assert again.created == [] and again.aliases_moved == [] and len(again.aliases_kept) == 1


def test_the_sync_takes_an_alias_back_once_the_api_points_it_at_the_files_version(catalog, prompts_dir):
    store = catalog.store()
    sync_directory(store, prompts_dir)
    v2 = _api_version(store, "ticket-triage", "candidate")
    _split(store, "ticket-triage", 1, v2)
    alias = store.get_alias("ticket-triage", "prod")
    store.move_alias("ticket-triage", "prod", [{"version": 1, "weight": 100}], expected_revision=alias.revision, updated_by=API_USER)
    assert sync_directory(store, prompts_dir).aliases_kept == []  # back where the file says: the sync owns it again
    _edit(prompts_dir / "ticket-triage.yaml", "max_tokens: 5", "max_tokens: 6")
    report = sync_directory(store, prompts_dir)
    assert report.aliases_moved == ["ticket-triage:prod -> v3"] and _targets(store, "ticket-triage") == [(3, 100)]


def test_a_file_is_not_republished_because_the_api_made_a_newer_version(catalog, prompts_dir):
    store = catalog.store()
    sync_directory(store, prompts_dir)
    _api_version(store, "rag-answer", "tried through the API, alias untouched")
    report = sync_directory(store, prompts_dir)
    assert report.created == [] and report.aliases_moved == []
    assert store.latest_version_number("rag-answer") == 2 and _targets(store, "rag-answer") == [(1, 100)]


def test_a_file_reverted_to_an_older_text_points_at_that_version(catalog, prompts_dir):
    store = catalog.store()
    sync_directory(store, prompts_dir)
    path = prompts_dir / "rag-answer.yaml"
    original = path.read_text()
    _edit(path, "temperature: 0.1", "temperature: 0.3")
    sync_directory(store, prompts_dir)
    path.write_text(original)
    report = sync_directory(store, prompts_dir)
    assert report.created == [] and report.aliases_moved == ["rag-answer:prod -> v1"]
    assert store.latest_version_number("rag-answer") == 2


def test_a_catalog_written_by_the_old_sync_is_taken_over_without_moving_api_aliases(catalog, prompts_dir):
    # Before the sync kept state, its moves were recognisable only by their author.
    store = catalog.store()
    sync_directory(store, prompts_dir, author="prompt-sync (old-stack)")
    for pid in ("rag-answer", "ticket-triage"):
        catalog.dynamodb.update_item(TableName="prompts-test", Key={"pk": {"S": f"P#{pid}"}, "sk": {"S": "META"}},
                                     UpdateExpression="REMOVE sync_hash, sync_version, sync_aliases")
    v2 = _api_version(store, "ticket-triage", "candidate")
    _split(store, "ticket-triage", 1, v2)
    _edit(prompts_dir / "rag-answer.yaml", "temperature: 0.1", "temperature: 0.3")
    _edit(prompts_dir / "ticket-triage.yaml", "max_tokens: 5", "max_tokens: 6")
    report = sync_directory(store, prompts_dir)
    assert report.aliases_moved == ["rag-answer:prod -> v2"]
    assert [k.split(" ")[0] for k in report.aliases_kept] == ["ticket-triage:prod"]


def test_the_custom_resource_reports_kept_aliases(catalog, prompts_dir):
    store = catalog.store()
    sync_handler.on_event({"RequestType": "Create", "StackId": "stack-1"}, store, prompts_dir)
    _split(store, "ticket-triage", 1, _api_version(store, "ticket-triage", "candidate"))
    _edit(prompts_dir / "ticket-triage.yaml", "max_tokens: 5", "max_tokens: 6")
    result = sync_handler.on_event({"RequestType": "Update", "StackId": "stack-1", "PhysicalResourceId": "p"}, store, prompts_dir)
    assert result["Data"] == {"Created": 1, "Unchanged": 2, "AliasesMoved": 0, "AliasesKept": 1}
