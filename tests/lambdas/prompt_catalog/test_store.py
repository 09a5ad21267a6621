"""The DynamoDB catalog store on moto: versions, overflow, aliases, concurrency."""

from __future__ import annotations

import threading

import boto3
import pytest

from lambdas.runtime.prompt_catalog.errors import (
    AliasConflict,
    AliasNotFound,
    ContentTooLarge,
    PromptNotFound,
    PromptValidationError,
    VersionNotFound,
)
from lambdas.runtime.prompt_catalog.model import parse_content

from .conftest import BUCKET, REGION, TABLE, TEXT_CONTENT


def content(template: str = "Answer {question} using {context}."):
    return parse_content({**TEXT_CONTENT, "template": template})


def test_versions_are_numbered_from_one_and_read_back(catalog):
    store = catalog.store()
    v1, created1 = store.create_version("faq", content(), change_note="first", author="alice", description="FAQ", owner="team-a", tags=["faq"])
    v2, created2 = store.create_version("faq", content("Q: {question}\nC: {context}"), change_note="second", author="bob")
    assert (v1.version, v2.version, created1, created2) == (1, 2, True, True)
    got = store.get_version("faq", 1)
    assert got.content == v1.content and got.content_hash == v1.content_hash
    assert (got.change_note, got.author) == ("first", "alice")
    info = store.get_prompt("faq")
    # Metadata given with v1 survives a later version that does not repeat it.
    assert (info.latest_version, info.description, info.owner, info.tags) == (2, "FAQ", "team-a", ("faq",))


def test_versions_are_immutable_only_if_changed_writes_nothing(catalog):
    store = catalog.store()
    v1, _ = store.create_version("faq", content())
    before = catalog.items()
    same, created = store.create_version("faq", content(), only_if_changed=True)
    assert (same.version, created) == (1, False)
    assert store.latest_version_number("faq") == 1
    assert [i for i in catalog.items() if i["sk"]["S"].startswith("V#")] == [i for i in before if i["sk"]["S"].startswith("V#")]
    # Without only_if_changed identical content is still a new version (an explicit re-publish).
    again, created = store.create_version("faq", content())
    assert (again.version, created) == (2, True)


def test_unknown_prompt_version_and_alias_are_404s(catalog):
    store = catalog.store()
    with pytest.raises(PromptNotFound):
        store.get_prompt("nope")
    store.create_version("faq", content())
    with pytest.raises(VersionNotFound) as info:
        store.get_version("faq", 7)
    assert info.value.status == 404
    with pytest.raises(AliasNotFound):
        store.get_alias("faq", "prod")
    with pytest.raises(PromptValidationError, match="prompt_id"):
        store.get_version("Bad Id!", 1)


def test_large_content_overflows_to_s3_and_reads_back(catalog):
    store = catalog.store(inline_limit=2_000)
    big = content("{question} {context} " + "lorem ipsum " * 1000)
    version, _ = store.create_version("big", big)
    item = catalog.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "P#big"}, "sk": {"S": "V#0000000001"}})["Item"]
    assert "content_json" not in item
    key = item["content_ref"]["M"]["key"]["S"]
    assert key == f"prompts/big/{version.content_hash}.json"
    assert catalog.s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 2_000
    assert store.get_version("big", 1).content == big


def test_large_content_without_an_overflow_bucket_is_rejected(catalog):
    store = catalog.store(inline_limit=2_000, overflow_bucket=None)
    with pytest.raises(ContentTooLarge, match="overflow bucket"):
        store.create_version("big", content("{question} {context} " + "x" * 3000))
    assert catalog.items() == []


def test_listing_prompts_and_versions_paginates(catalog):
    store = catalog.store()
    for pid in ("c", "a", "b"):
        store.create_version(pid, content())
    for _ in range(4):
        store.create_version("a", content())
    page, token = store.list_prompts(limit=2)
    rest, end = store.list_prompts(limit=2, after=token)
    assert [p.prompt_id for p in page + rest] == ["a", "b", "c"] and end is None
    versions, before = store.list_versions("a", limit=3)
    older, none = store.list_versions("a", limit=3, before=before)
    assert [v["version"] for v in versions] == [5, 4, 3]
    assert [v["version"] for v in older] == [2, 1] and none is None
    pages, before = [], None
    while True:  # one at a time: every version exactly once, newest first
        page, before = store.list_versions("a", limit=1, before=before)
        pages += [v["version"] for v in page]
        if before is None:
            break
    assert pages == [5, 4, 3, 2, 1]


def test_alias_moves_use_optimistic_locking(catalog):
    store = catalog.store()
    for _ in range(3):
        store.create_version("faq", content())
    created = store.move_alias("faq", "prod", [{"version": 1}], expected_revision=0, updated_by="alice")
    assert created.revision == 1
    moved = store.move_alias("faq", "prod", [{"version": 2, "weight": 90}, {"version": 3, "weight": 10}], expected_revision=1)
    assert moved.revision == 2
    with pytest.raises(AliasConflict) as info:
        store.move_alias("faq", "prod", [{"version": 1}], expected_revision=1)  # stale read
    assert info.value.current_revision == 2 and info.value.status == 409
    with pytest.raises(AliasConflict):
        store.move_alias("faq", "prod", [{"version": 1}], expected_revision=0)  # "create" over an existing one
    stored = store.get_alias("faq", "prod")
    assert [(t.version, t.weight) for t in stored.targets] == [(2, 90), (3, 10)] and stored.revision == 2


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([{"version": 1, "weight": 60}, {"version": 2, "weight": 30}], "weights must sum to 100, got 90"),
        ([{"version": 1, "weight": 50}, {"version": 1, "weight": 50}], "two different versions"),
        ([{"version": 1, "weight": 40}, {"version": 2, "weight": 30}, {"version": 2, "weight": 30}], "at most 2"),
        ([], "at least 1"),
        ([{"version": 9}], "has no version 9"),
        ([{"version": 0}], "greater than or equal to 1"),
        ("v1", "valid tuple"),
    ],
)
def test_invalid_alias_targets_are_rejected(catalog, targets, message):
    store = catalog.store()
    store.create_version("faq", content())
    store.create_version("faq", content())
    with pytest.raises(PromptValidationError, match=message):
        store.move_alias("faq", "prod", targets, expected_revision=0)


def test_latest_is_reserved_and_resolves_to_the_highest_version(catalog):
    store = catalog.store()
    store.create_version("faq", content())
    store.create_version("faq", content())
    with pytest.raises(PromptValidationError, match="reserved"):
        store.move_alias("faq", "latest", [{"version": 1}], expected_revision=0)
    assert store.resolve_alias("faq", "latest").targets[0].version == 2


def _race(n: int, work) -> tuple[list, list]:
    """Run ``work(i)`` in ``n`` threads released together; (results, errors)."""
    barrier = threading.Barrier(n)
    results, errors, lock = [], [], threading.Lock()

    def run(i):
        barrier.wait()
        try:
            out = work(i)
            with lock:
                results.append(out)
        except Exception as exc:  # collected and asserted on by the caller
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_concurrent_creates_get_distinct_consecutive_versions(catalog, atomic_moto_writes):
    writers = 8
    # One boto3 client per writer, as separate Lambda invocations would have.
    stores = [catalog.store(dynamodb=boto3.client("dynamodb", region_name=REGION)) for _ in range(writers)]
    stores[0].create_version("faq", content())  # v1 exists, so every writer races for v2 onwards

    def create(i):
        return stores[i].create_version("faq", content(f"Writer {i}: {{question}} {{context}}"), author=f"writer-{i}")[0]

    results, errors = _race(writers, create)
    assert errors == []
    assert sorted(v.version for v in results) == list(range(2, writers + 2))
    # None lost or overwritten: each stored version holds the content its writer sent.
    for v in results:
        stored = stores[0].get_version("faq", v.version)
        assert stored.author == v.author and stored.content.template == f"Writer {v.author[7:]}: {{question}} {{context}}"
    assert stores[0].get_prompt("faq").latest_version == writers + 1


def test_concurrent_alias_moves_cannot_overwrite_each_other(catalog, atomic_moto_writes):
    store = catalog.store()
    for _ in range(3):
        store.create_version("faq", content())
    store.move_alias("faq", "prod", [{"version": 1}], expected_revision=0)
    stores = [catalog.store(dynamodb=boto3.client("dynamodb", region_name=REGION)) for _ in range(2)]

    def move(i):
        return stores[i].move_alias("faq", "prod", [{"version": i + 2}], expected_revision=1, updated_by=f"mover-{i}")

    results, errors = _race(2, move)
    assert len(results) == 1 and len(errors) == 1 and isinstance(errors[0], AliasConflict)
    stored = store.get_alias("faq", "prod")
    assert stored.revision == 2 and stored.updated_by == results[0].updated_by
    assert stored.targets[0].version == results[0].targets[0].version
