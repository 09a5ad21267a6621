"""The version writer: the one function that creates prompt versions, and the callers that go through it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lambdas.prompt_catalog_sync import handler as sync_handler
from lambdas.runtime.prompt_catalog.errors import PromptCatalogError
from lambdas.runtime.prompt_catalog.model import parse_content
from lambdas.runtime.prompt_catalog.store import PromptCatalogStore
from lambdas.runtime.prompt_catalog.writer import LambdaVersionWriter, WriterError, handle

from .conftest import TEXT_CONTENT, WRITER_ARN

REPO_PROMPTS = Path(__file__).resolve().parents[3] / "prompts"


def test_a_store_configured_with_a_writer_creates_versions_only_through_it(catalog, writer_lambda):
    store = writer_lambda.store(catalog)
    calls: list[str] = []
    catalog.dynamodb.meta.events.register("provide-client-params.dynamodb.*", lambda model, **_: calls.append(model.name))
    version, created = store.create_version("p", parse_content(TEXT_CONTENT), author="alice", description="d", tags=["x"])
    assert created and version.version == 1 and version.author == "alice"
    assert [r["operation"] for r in writer_lambda.requests] == ["create_version"]
    assert "PutItem" not in calls and "UpdateItem" not in calls  # the caller's own client wrote nothing
    again, created = store.create_version("p", parse_content(TEXT_CONTENT), only_if_changed=True)
    assert not created and again == version
    assert store.get_version("p", 1) == version
    assert store.get_prompt("p").description == "d"


def test_the_sync_custom_resource_writes_versions_and_metadata_through_the_writer(catalog, writer_lambda, tmp_path):
    prompts = Path(shutil.copytree(REPO_PROMPTS, tmp_path / "prompts"))
    store = PromptCatalogStore.from_env()  # as the deployed sync builds it: PROMPT_VERSION_WRITER is set
    assert isinstance(store.version_writer, LambdaVersionWriter) and store.version_writer.function == WRITER_ARN
    result = sync_handler.on_event({"RequestType": "Create", "StackId": "stack-1"}, store, prompts)
    files = len(list(prompts.glob("*.yaml")))
    assert result["Data"]["Created"] == files
    assert [r["operation"] for r in writer_lambda.requests] == ["create_version"] * files
    path = prompts / "ticket-triage.yaml"
    path.write_text(path.read_text().replace("platform-team", "support-team"))  # metadata only
    sync_handler.on_event({"RequestType": "Update", "StackId": "stack-1", "PhysicalResourceId": "p"}, store, prompts)
    assert writer_lambda.requests[-1]["operation"] == "update_metadata"
    assert store.get_prompt("ticket-triage").owner == "support-team"
    assert store.latest_version_number("ticket-triage") == 1


def test_the_writers_refusals_reach_the_caller_with_status_and_body(catalog, writer_lambda):
    writer = writer_lambda.store(catalog).version_writer
    with pytest.raises(WriterError) as info:  # the store checks ids first; the writer checks them again
        writer.create_version("Not An Id!", parse_content(TEXT_CONTENT))
    assert info.value.status == 400 and info.value.to_body()["error"] == "ValidationError"
    assert "prompt_id" in str(info.value)


@pytest.mark.parametrize(("request_", "field"), [
    ("not an object", "request"),
    ({"operation": "delete_version", "prompt_id": "p"}, "operation"),
    ({"operation": "create_version"}, "prompt_id"),
    ({"operation": "create_version", "prompt_id": "p", "content": {"kind": "text"}}, "content"),
    ({"operation": "update_metadata", "prompt_id": "p", "tags": "a,b"}, "tags"),
    ({"operation": "update_metadata", "prompt_id": "p", "owner": 7}, "owner"),
])
def test_bad_requests_are_answered_naming_the_field(catalog, request_, field):
    result = handle(catalog.store(), request_)
    assert result["error"]["status"] == 400
    assert field in result["error"]["body"]["message"]


def test_a_failure_of_the_writer_itself_is_a_function_error_for_the_caller(catalog, writer_lambda, monkeypatch):
    monkeypatch.setenv("PROMPT_TABLE_NAME", "no-such-table")
    with pytest.raises(RuntimeError, match="writer .* failed \\(Unhandled: ResourceNotFoundException\\)") as info:
        writer_lambda.store(catalog).create_version("p", parse_content(TEXT_CONTENT))
    assert not isinstance(info.value, PromptCatalogError)


def test_the_writer_refuses_to_write_through_itself(monkeypatch):
    from lambdas.prompt_catalog_writer import handler as writer_handler

    monkeypatch.setenv("PROMPT_VERSION_WRITER", WRITER_ARN)
    writer_handler.get_store.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="must not be set on the version writer"):
            writer_handler.get_store()
    finally:
        writer_handler.get_store.cache_clear()


def test_alias_moves_name_no_attribute_a_version_item_has(catalog):
    from llmops.constructs.prompt_catalog.catalog import VERSION_ATTRIBUTES

    store = catalog.store()
    store.create_version("p", parse_content(TEXT_CONTENT))
    sent: list[dict] = []
    catalog.dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", lambda params, **_: sent.append(params))
    store.move_alias("p", "prod", [{"version": 1}], expected_revision=0)
    assert sent and not set(sent[0]["UpdateExpression"].replace(",", " ").split()) & set(VERSION_ATTRIBUTES)
