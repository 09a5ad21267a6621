"""The one sticky assignment function: deterministic, proportional to the weights, 0 and 100 exact."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.runtime.experiments.assignment import Experiment, Arm, assign, parse_experiments, unit_point

units = st.text(min_size=1, max_size=80)
names = st.lists(st.text(alphabet="abcdefghij-", min_size=1, max_size=8), min_size=1, max_size=10, unique=True)


@st.composite
def weighted_arms(draw):
    arm_names = draw(names)
    weights = draw(st.lists(st.integers(0, 100), min_size=len(arm_names), max_size=len(arm_names)))
    if sum(weights) == 0:
        weights[draw(st.integers(0, len(weights) - 1))] = draw(st.integers(1, 100))
    return list(zip(arm_names, weights))


@settings(max_examples=300, deadline=None)
@given(unit=units, arms=weighted_arms(), salt=st.text(max_size=20))
def test_the_same_unit_always_gets_the_same_arm_and_never_a_weightless_one(unit, arms, salt):
    chosen = assign(unit, arms, salt=salt)
    assert chosen == assign(unit, list(arms), salt=salt)
    assert dict(arms)[chosen] > 0


@settings(max_examples=200, deadline=None)
@given(unit=units, position=st.integers(0, 9), count=st.integers(1, 10), salt=st.text(max_size=20))
def test_an_arm_with_all_the_weight_takes_everyone(unit, position, count, salt):
    position %= count
    arms = [(f"arm{i}", 100 if i == position else 0) for i in range(count)]
    assert assign(unit, arms, salt=salt) == f"arm{position}"


@settings(max_examples=200, deadline=None)
@given(unit=units, salt=st.text(max_size=20))
def test_the_point_is_in_the_unit_interval(unit, salt):
    assert 0.0 <= unit_point(unit, salt) < 1.0


@pytest.mark.parametrize("weights", [(50, 50), (70, 30), (90, 10), (1, 99), (20, 30, 50), (10,) * 10])
def test_shares_follow_the_weights(weights):
    # 20,000 fixed ids (seeded): each arm's share within 4.5 binomial standard deviations of its weight
    # (at most ~0.016 here); the hash is deterministic, so the test cannot flake.
    rng = random.Random(15)
    ids = [f"session-{rng.getrandbits(64):016x}" for _ in range(20_000)]
    arms = [(f"a{i}", w) for i, w in enumerate(weights)]
    counts = {name: 0 for name, _ in arms}
    for unit in ids:
        counts[assign(unit, arms, salt="exp")] += 1
    for name, weight in arms:
        p = weight / sum(weights)
        tolerance = 4.5 * math.sqrt(p * (1 - p) / len(ids))
        assert abs(counts[name] / len(ids) - p) <= tolerance, (name, counts[name], p)


def test_experiments_with_different_names_split_independently():
    # Two 50/50 experiments: each of the four combinations holds ~25% of 20,000 ids (within 0.015).
    ids = [f"user-{i}" for i in range(20_000)]
    arms = [("a", 50), ("b", 50)]
    joint: dict[tuple[str, str], int] = {}
    for unit in ids:
        key = (assign(unit, arms, salt="first"), assign(unit, arms, salt="second"))
        joint[key] = joint.get(key, 0) + 1
    assert len(joint) == 4 and all(abs(n / len(ids) - 0.25) < 0.015 for n in joint.values())


@pytest.mark.parametrize("weights, message", [
    ([], "at least one arm"),
    ([("a", 0), ("b", 0)], "every arm has weight 0"),
    ([("a", -1), ("b", 101)], "'a' has weight -1"),
    ([("a", float("nan"))], "finite numbers"),
])
def test_bad_weights_are_named(weights, message):
    with pytest.raises(ValueError, match=message):
        assign("u", weights)


def test_a_promoted_winner_answers_everyone_and_a_shadow_test_its_production_arm():
    promoted = Experiment("e", "embedding-ab", (Arm("a", 0), Arm("b", 100)), winner="a")
    shadow = Experiment("s", "model-shadow", (Arm("prod", 0, variant="v1"), Arm("new", 0, variant="v2", shadow=True)))
    assert {promoted.assign(f"u{i}").name for i in range(200)} == {"a"}
    assert {shadow.assign(f"u{i}").name for i in range(200)} == {"prod"}


def test_experiments_variable_round_trips():
    text = json.dumps([{"name": "emb", "kind": "embedding-ab", "winner": None, "arms": [
        {"name": "a", "weight": 50, "model": "m1", "dimension": 384},
        {"name": "b", "weight": 50, "model": "m2", "dimension": 768, "environment": {"PG_TABLE": "rag_chunks_b"}}]}])
    (exp,) = parse_experiments(text)
    assert exp.arm("b").environment == {"PG_TABLE": "rag_chunks_b"} and exp.arm("b").dimension == 768
    assert parse_experiments("") == () and parse_experiments(None) == ()


@pytest.mark.parametrize("text, message", [
    ("{", "not JSON"),
    ('{"name": "x"}', "a JSON list"),
    ('[{"name": "x", "kind": "bandit", "arms": []}]', "EXPERIMENTS.x.kind"),
    ('[{"name": "x", "kind": "model-ab", "arms": []}]', "EXPERIMENTS.x.arms: a non-empty list"),
    ('[{"name": "x", "kind": "model-ab", "arms": [{"name": "a", "weight": 101}]}]', r"EXPERIMENTS.x.arms\[0\].weight"),
    ('[{"name": "x", "kind": "model-ab", "winner": "c", "arms": [{"name": "a", "weight": 100}]}]', "EXPERIMENTS.x.winner"),
    ('[{"name": "x", "kind": "model-ab", "arms": [{"name": "a", "weight": 0}]}]', "every weight is 0"),
    ('[{"name": "x", "kind": "embedding-ab", "arms": [{"name": "a", "weight": 100, "environment": {"A": 1}}]}]',
     "environment: an object of string values"),
])
def test_a_bad_experiments_variable_names_the_entry_and_field(text, message):
    with pytest.raises(ValueError, match=message):
        parse_experiments(text)


def test_the_prompt_client_splits_an_alias_with_the_same_sticky_hash():
    from lambdas.runtime.prompt_catalog.client import PromptCatalogClient
    from lambdas.runtime.prompt_catalog.model import Alias, AliasTarget

    client = PromptCatalogClient("unused", store=object())
    alias = Alias("rag-answer", "prod", (AliasTarget(version=3, weight=80), AliasTarget(version=4, weight=20)), 1, "", "")
    chosen = [client.choose_version(alias, f"session-{i}") for i in range(10_000)]
    assert chosen == [client.choose_version(alias, f"session-{i}") for i in range(10_000)]  # sticky
    assert chosen == [int(assign(f"session-{i}", [("3", 80), ("4", 20)], salt="prompt:rag-answer:prod")) for i in range(10_000)]
    assert abs(chosen.count(4) / 10_000 - 0.2) < 4.5 * math.sqrt(0.16 / 10_000)
