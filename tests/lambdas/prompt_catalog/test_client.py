"""PromptCatalogClient: render by alias with an in-memory cache, A/B weights, contract shape."""

from __future__ import annotations

import random

import pytest

from lambdas.runtime.prompt_catalog.client import PromptCatalogClient
from lambdas.runtime.prompt_catalog.errors import AliasNotFound, RenderVariablesError
from lambdas.runtime.prompt_catalog.model import RenderedPrompt, parse_content

from .conftest import TABLE, TEXT_CONTENT


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def count_calls(client) -> list[str]:
    calls: list[str] = []
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    return calls


@pytest.fixture
def seeded(catalog):
    store = catalog.store()
    store.create_version("faq", parse_content(TEXT_CONTENT))
    store.create_version("faq", parse_content({**TEXT_CONTENT, "template": "Q: {question}\nContext: {context}"}))
    store.move_alias("faq", "prod", [{"version": 1}], expected_revision=0)
    return store


def test_render_returns_the_contract_fields(catalog, seeded):
    client = PromptCatalogClient(TABLE, dynamodb=catalog.dynamodb)
    rendered = client.render("faq", {"question": "Why?", "context": "the notes"})
    assert isinstance(rendered, RenderedPrompt)
    assert rendered.text == "Answer Why? using the notes."
    assert (rendered.prompt_id, rendered.version, rendered.alias) == ("faq", 1, "prod")
    assert rendered.content_hash == seeded.get_version("faq", 1).content_hash
    assert rendered.model_parameters == {"temperature": 0.1, "max_tokens": 256, "top_p": None, "stop": ["\n\n"]}


def test_warm_cache_renders_without_dynamodb_calls_until_the_ttl(catalog, seeded):
    clock = Clock()
    client = PromptCatalogClient(TABLE, dynamodb=catalog.dynamodb, cache_ttl_seconds=30, clock=clock)
    calls = count_calls(catalog.dynamodb)
    client.render("faq", {"question": "a", "context": "b"})
    cold = len(calls)
    for _ in range(5):
        client.render("faq", {"question": "a", "context": "b"})
    assert cold == 2 and len(calls) == cold  # alias + version once, then nothing

    seeded.move_alias("faq", "prod", [{"version": 2}], expected_revision=1)
    assert client.render("faq", {"question": "a", "context": "b"}).version == 1  # still cached
    clock.now += 31
    calls.clear()
    after = client.render("faq", {"question": "a", "context": "b"})
    assert after.version == 2 and after.text == "Q: a\nContext: b"
    assert calls == ["GetItem", "GetItem"]


def test_ab_split_follows_the_weights_and_reports_the_version(catalog, seeded):
    seeded.move_alias("faq", "prod", [{"version": 1, "weight": 80}, {"version": 2, "weight": 20}], expected_revision=1)
    client = PromptCatalogClient(TABLE, dynamodb=catalog.dynamodb, rng=random.Random(7))
    versions = [client.render("faq", {"question": "a", "context": "b"}).version for _ in range(2000)]
    share = versions.count(1) / len(versions)
    assert 0.76 < share < 0.84
    assert set(versions) == {1, 2}


def test_render_by_version_and_latest(catalog, seeded):
    client = PromptCatalogClient(TABLE, dynamodb=catalog.dynamodb)
    assert client.render_version("faq", 2, {"question": "a", "context": "b"}).version == 2
    assert client.render("faq", {"question": "a", "context": "b"}, alias="latest").version == 2


def test_bad_variables_and_unknown_alias_raise_clear_errors(catalog, seeded):
    client = PromptCatalogClient(TABLE, dynamodb=catalog.dynamodb)
    with pytest.raises(RenderVariablesError, match="missing variable\\(s\\): context"):
        client.render("faq", {"question": "a"})
    with pytest.raises(AliasNotFound, match="no alias 'canary'"):
        client.render("faq", {"question": "a", "context": "b"}, alias="canary")
