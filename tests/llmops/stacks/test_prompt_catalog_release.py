"""The prompt sync custom resource carries the release's prompt pins and the prompt A/B weights."""

from __future__ import annotations

import datetime as dt
import json

from llmops.delivery.release import load_release
from tests.helpers import REPO_ROOT, synth_stage, template_of

ONLY_PROMPTS = {"capabilities": {"rag": False, "data_prep": False, "fine_tuning": False, "prompt_catalog": True,
                                 "human_review": False, "inference": False, "monitoring": False}}


def sync_props(template) -> dict:
    (resource,) = template.find_resources("Custom::PromptSync").values()
    return resource["Properties"]


def test_staging_sync_carries_the_committed_release_pins():
    props = sync_props(template_of(synth_stage("staging", ONLY_PROMPTS).prompt_catalog))
    release = load_release(REPO_ROOT / "release.json")
    pins = json.loads(props["ReleasePins"])
    assert pins["rag-answer"]["prod"] == {"version": release.prompts["rag-answer"]["prod"].version,
                                          "content_hash": release.prompts["rag-answer"]["prod"].content_hash}
    assert props["Release"] == release.name and "Experiments" not in props


def test_dev_without_a_release_syncs_the_files_only():
    props = sync_props(template_of(synth_stage("dev", ONLY_PROMPTS).prompt_catalog))
    assert "ReleasePins" not in props and "Experiments" not in props


def test_a_prompt_ab_experiment_becomes_alias_weights_and_a_winner_takes_all():
    end = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    experiment = {"kind": "prompt-ab", "prompt": "rag-answer", "alias": "prod", "end": end,
                  "arms": [{"name": "control", "version": 1, "weight": 90}, {"name": "terse", "version": 2, "weight": 10}]}
    props = sync_props(template_of(synth_stage("dev", {**ONLY_PROMPTS, "experiments": {"answer-style": experiment}}).prompt_catalog))
    assert json.loads(props["Experiments"]) == [{"name": "answer-style", "prompt": "rag-answer", "alias": "prod",
                                                  "targets": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]}]
    won = {**experiment, "winner": "terse"}
    props = sync_props(template_of(synth_stage("dev", {**ONLY_PROMPTS, "experiments": {"answer-style": won}}).prompt_catalog))
    assert json.loads(props["Experiments"])[0]["targets"] == [{"version": 2, "weight": 100}]
