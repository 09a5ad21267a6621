"""``llmops experiments replay``: the same requests to every arm, judged like live traffic.

Locally with two versions of a catalog prompt on the real local model (SmolLM2 behind the local
serving contract); in AWS against the endpoint's variants with ``TargetVariant`` (botocore Stubber).
"""

from __future__ import annotations

import io
import json

import boto3
import pytest
import yaml
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from llmops.cli import main as cli
from llmops.config import DEFAULT_CONFIG_PATH, REPO_ROOT

PROMPT_AB = {"kind": "prompt-ab", "prompt": "rag-answer", "end": "2099-12-31", "min_samples": 200,
             "metrics": ["response_tokens", "readability", "latency_ms"],
             "arms": [{"name": "v1", "version": 1, "weight": 90}, {"name": "v2", "version": 2, "weight": 10}]}
MODEL_AB = {"kind": "model-ab", "endpoint": "llm", "end": "2099-12-31", "metrics": ["response_tokens", "latency_ms"],
            "arms": [{"name": "base", "variant": "primary", "weight": 90}, {"name": "tuned", "variant": "tuned", "weight": 10}]}
PASSAGE = "[1] policy.md: Refunds are paid within 14 days of the returned item arriving at the warehouse."


def write_config(tmp_path, monkeypatch, env: str, overrides: dict):
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    raw["environments"][env] = {**(raw["environments"].get(env) or {}), **overrides}
    path = tmp_path / "environments.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    monkeypatch.setattr("llmops.config.DEFAULT_CONFIG_PATH", path)
    return path


@pytest.fixture
def prompt_v2(tmp_path):
    """Version 2 of rag-answer: the catalog file with a shorter instruction (what a prompt change would commit)."""
    data = yaml.safe_load((REPO_ROOT / "prompts" / "rag-answer.yaml").read_text(encoding="utf-8"))
    data["template"] = "Answer in one short sentence from the context.\n\nContext:\n{context}\n\nQuestion: {question}\n\nAnswer:"
    data["change_note"] = "Shorter instruction."
    path = tmp_path / "rag-answer.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.xdist_group("local_model")
def test_replay_two_prompt_versions_on_the_local_model(tmp_path, monkeypatch, capsys, prompt_v2):
    from llmops.cli.local_serve import model_cache_dir

    monkeypatch.setenv("LLMOPS_MODEL_CACHE", str(model_cache_dir()))  # the converted model every local test shares
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "state"))
    write_config(tmp_path, monkeypatch, "dev", {"experiments": {"answer-v2": PROMPT_AB}})
    requests = tmp_path / "requests.jsonl"
    requests.write_text("\n".join(json.dumps(r) for r in (
        {"variables": {"question": "How many days until a refund is paid?", "context": PASSAGE}},
        {"question": "When are refunds paid?", "context": PASSAGE},
        {"nothing": None, "variables": {}},
    )) + "\n", encoding="utf-8")
    answers = tmp_path / "answers.jsonl"
    code = cli(["experiments", "replay", "answer-v2", "--requests", str(requests), "--local", "--prompt-file",
                f"v2={prompt_v2}", "--threads", "1", "--max-new-tokens", "6", "--min-samples", "2", "--answers", str(answers), "--json",
                "--no-mlflow"])
    out = capsys.readouterr()
    assert code == 0, out.err
    verdict = json.loads(out.out)
    assert verdict["samples"] == {"v1": 2, "v2": 2}
    assert verdict["status"] in ("winner", "no-difference", "mixed")  # decided on 2 per arm: compared, whatever it says
    assert {c["metric"] for c in verdict["comparisons"]} == {"response_tokens", "readability", "latency_ms"}
    assert any("offline, no user saw these answers" in n for n in verdict["notes"])
    assert "line 3: no 'variables', 'prompt' or 'captureData'" in out.err
    records = [json.loads(line) for line in answers.read_text().splitlines()]
    assert sorted((r["metadata"]["arm"], r["metadata"]["prompt_version"]) for r in records) == [("v1", 1), ("v1", 1), ("v2", 2), ("v2", 2)]
    assert all(r["response"] and r["metrics"]["latency_ms"] > 0 for r in records)
    assert {r["metadata"]["model"] for r in records} == {"sagemaker:local"}
    v1 = next(r["prompt"] for r in records if r["metadata"]["arm"] == "v1")
    v2 = next(r["prompt"] for r in records if r["metadata"]["arm"] == "v2")
    assert v1.startswith("You answer questions using only") and v2.startswith("Answer in one short sentence")


def _lmi(text: str) -> dict:
    raw = json.dumps({"generated_text": text}).encode()
    return {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"}


def test_replay_in_aws_sends_each_request_to_every_variant(tmp_path, monkeypatch, capsys):
    write_config(tmp_path, monkeypatch, "staging", {
        "experiments": {"tuned-vs-base": MODEL_AB},
        "inference": {"llm": {"variants": {"primary": {}, "tuned": {"model": {"source": "s3", "s3_prefix": "tuned/"}}}}},
    })
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "state"))
    capture = {"captureData": {"endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "encoding": "JSON",
                                                 "data": json.dumps({"inputs": "Captured: what is the refund window?"})}},
               "eventMetadata": {"eventId": "e-1", "inferenceTime": "2026-12-01T10:00:00Z"}}
    requests = tmp_path / "requests.jsonl"
    requests.write_text("\n".join(json.dumps(r) for r in (
        {"prompt": "What is the refund window?"}, capture, {"prompt": "Who pays return shipping?"})) + "\n", encoding="utf-8")
    client = boto3.client("sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    for prompt in ("What is the refund window?", "Captured: what is the refund window?", "Who pays return shipping?"):
        for variant, answer in (("primary", "Fourteen days."), ("tuned", "Refunds are paid within 14 days of arrival.")):
            stubber.add_response("invoke_endpoint", _lmi(answer), {
                "EndpointName": "llmops-stg-llm", "TargetVariant": variant, "ContentType": "application/json",
                "Accept": "application/json", "Body": ANY})
    real_client = boto3.client
    monkeypatch.setattr(boto3, "client", lambda service, **kw: client if service == "sagemaker-runtime" else real_client(service, **kw))
    with stubber:
        code = cli(["experiments", "replay", "tuned-vs-base", "--env", "staging", "--requests", str(requests),
                    "--min-samples", "3", "--json", "--no-mlflow"])
        stubber.assert_no_pending_responses()
    out = capsys.readouterr()
    assert code == 0, out.err
    verdict = json.loads(out.out)
    assert verdict["samples"] == {"base": 3, "tuned": 3}
    tokens = next(c for c in verdict["comparisons"] if c["metric"] == "response_tokens")
    assert tokens["mean_control"] < tokens["mean_treatment"]  # each variant's own answers were scored
    assert "endpoint llmops-stg-llm" in " ".join(verdict["notes"])


@pytest.mark.parametrize("env, experiment, extra, message", [
    ("staging", {**MODEL_AB}, ["--local"], "the local server has one model"),
    ("staging", {**MODEL_AB, "kind": "model-shadow", "arms": [{"name": "base", "variant": "primary"},
                                                             {"name": "tuned", "variant": "tuned", "shadow": True}]},
     [], "does not route a request to a shadow variant"),
    ("dev", PROMPT_AB, ["--local"], "--prompt-file v2=PATH: the file of prompt rag-answer version 2 (arm v2)"),
    ("dev", PROMPT_AB, ["--local", "--prompt-file", "v9=x.yaml"], "'v9' is not an arm; arms: v1, v2"),
])
def test_replay_refuses_what_it_cannot_replay(tmp_path, monkeypatch, capsys, env, experiment, extra, message):
    overrides = {"experiments": {"x-test": experiment}}
    if experiment["kind"].startswith("model"):
        overrides["inference"] = {"llm": {"variants": {"primary": {}, "tuned": {}}}}
    write_config(tmp_path, monkeypatch, env, overrides)
    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps({"prompt": "hi"}) + "\n", encoding="utf-8")
    assert cli(["experiments", "replay", "x-test", "--env", env, "--requests", str(requests), *extra]) == 2
    assert message in capsys.readouterr().err
