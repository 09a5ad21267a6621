"""End to end: every prompt in prompts/ synced into the catalog, rendered by the client, and sent
by every LLM client (TGI, DJL-LMI, Bedrock Converse); the request each would send is checked.

Converse requests go through a botocore Stubber, which validates them against the real API model;
SageMaker bodies are captured as JSON (the endpoint body is opaque to botocore).
"""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.runtime.prompt_catalog.client import PromptCatalogClient
from lambdas.runtime.prompt_catalog.files import load_prompt_dir
from lambdas.runtime.prompt_catalog.model import RenderedPrompt
from lambdas.runtime.prompt_catalog.sync import sync_directory
from lambdas.runtime.rag.llm import BedrockConverseLlm, PromptIncompatible, SageMakerLlm

# As deployed: the sync (and the API) create versions through the writer function, which alone holds PutItem.
pytestmark = pytest.mark.usefixtures("writer_lambda")

REPO_PROMPTS = Path(__file__).resolve().parents[3] / "prompts"
PROMPT_FILES = load_prompt_dir(REPO_PROMPTS).files
SAMPLE = {"string": "sample {text} with braces", "integer": 3, "number": 1.5, "boolean": True, "list": ["a"], "object": {"k": "v"}}


class JsonBody:
    def __init__(self) -> None:
        self.seen: list = []

    def __eq__(self, other) -> bool:
        self.seen.append(json.loads(other))
        return True

    def __ne__(self, other) -> bool:
        return not self.__eq__(other)


def _body(payload) -> StreamingBody:
    raw = json.dumps(payload).encode()
    return StreamingBody(BytesIO(raw), len(raw))


def _variables(prompt_file) -> dict:
    return {name: SAMPLE[spec.type] for name, spec in prompt_file.content.variables.items()}


@pytest.fixture
def rendered(catalog) -> dict[str, RenderedPrompt]:
    sync_directory(catalog.store(), REPO_PROMPTS)
    client = PromptCatalogClient("unused", store=catalog.store())
    return {f.prompt_id: client.render(f.prompt_id, _variables(f), alias="prod") for f in PROMPT_FILES}


def test_every_repo_prompt_is_covered():
    assert {f.prompt_id for f in PROMPT_FILES} == {"rag-answer", "reasoned-answer", "ticket-triage"}
    assert {f.content.kind for f in PROMPT_FILES} == {"text", "chat"}


def _sagemaker_request(container: str, prompt: RenderedPrompt, answer) -> tuple[dict, str]:
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1")
    sent = JsonBody()
    with Stubber(client) as stub:
        stub.add_response("invoke_endpoint", {"Body": _body(answer), "ContentType": "application/json"},
                          {"EndpointName": "llm", "ContentType": "application/json", "Accept": "application/json", "Body": sent})
        generation = SageMakerLlm("llm", container=container, client=client).generate(prompt)
        stub.assert_no_pending_responses()
    return sent.seen[0], generation.text


CHAT_ANSWER = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": " 42 "},
                                                        "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 30, "completion_tokens": 2, "total_tokens": 32}}
TEXT_ANSWER = [{"generated_text": " 42 ", "details": {"generated_tokens": 2, "prefill": []}}]


@pytest.mark.parametrize("container", ["tgi", "djl-lmi"])
@pytest.mark.parametrize("prompt_file", PROMPT_FILES, ids=lambda f: f.prompt_id)
def test_sagemaker_containers_get_chat_prompts_as_messages_and_text_prompts_as_inputs(rendered, container, prompt_file):
    prompt = rendered[prompt_file.prompt_id]
    params = prompt_file.content.model_parameters
    chat = prompt_file.content.kind == "chat"
    sent, text = _sagemaker_request(container, prompt, CHAT_ANSWER if chat else TEXT_ANSWER)
    assert text == "42"
    if chat:
        assert set(sent) <= {"messages", "max_tokens", "temperature", "top_p", "stop"}
        assert [m["role"] for m in sent["messages"]] == [
            {"human": "user", "ai": "assistant"}.get(m.role, m.role) for m in prompt_file.content.messages
        ]
        assert "Human:" not in json.dumps(sent) and "System:" not in json.dumps(sent)
        # Every variable reached a message, braces in values untouched.
        assert "sample {text} with braces" in sent["messages"][-1]["content"]
        assert sent["max_tokens"] == params.max_tokens and sent["temperature"] == params.temperature
        assert sent.get("stop", []) == list(params.stop)
    else:
        assert sent["inputs"] == prompt.text and "sample {text} with braces" in sent["inputs"]
        parameters = sent["parameters"]
        assert parameters["max_new_tokens"] == params.max_tokens
        assert parameters["do_sample"] is (params.temperature > 0)
        stop_key = "stop" if container == "tgi" else "stop_sequences"
        assert parameters.get(stop_key, []) == list(params.stop)


@pytest.mark.parametrize("prompt_file", PROMPT_FILES, ids=lambda f: f.prompt_id)
def test_converse_keeps_every_message_of_every_prompt(rendered, prompt_file):
    prompt = rendered[prompt_file.prompt_id]
    request = BedrockConverseLlm("anthropic.claude-3-haiku-20240307-v1:0", client=object()).request(prompt)
    client = boto3.client("bedrock-runtime", region_name="eu-west-1")
    with Stubber(client) as stub:  # the Stubber validates the request against the Converse API model
        stub.add_response("converse", {"output": {"message": {"role": "assistant", "content": [{"text": "42"}]}},
                                       "stopReason": "end_turn", "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
                                       "metrics": {"latencyMs": 1}}, request)
        assert BedrockConverseLlm("anthropic.claude-3-haiku-20240307-v1:0", client=client).generate(prompt).text == "42"
        stub.assert_no_pending_responses()
    assert request["messages"], "the request must carry the user's message"
    assert request["messages"][0]["role"] == "user"
    sent_text = json.dumps(request)
    if prompt_file.content.kind == "chat":
        system = [m for m in prompt_file.content.messages if m.role == "system"]
        assert len(request.get("system", [])) == len(system)
        assert len(request["messages"]) == len([m for m in prompt_file.content.messages if m.role != "system"])
    else:
        assert request["messages"] == [{"role": "user", "content": [{"text": prompt.text}]}]
    assert "sample {text} with braces" in sent_text
    params = prompt_file.content.model_parameters
    assert request["inferenceConfig"]["maxTokens"] == params.max_tokens
    assert request["inferenceConfig"].get("stopSequences", []) == list(params.stop)


def _prompt(messages=(), **parameters) -> RenderedPrompt:
    return RenderedPrompt(text="System: s\nHuman: q", prompt_id="p", version=2, content_hash="h",
                          model_parameters=parameters, messages=tuple(messages))


@settings(deadline=None)  # no timing assertions: the CI machine is shared
@given(temperature=st.one_of(st.none(), st.floats(0, 2)), max_tokens=st.one_of(st.none(), st.integers(1, 4096)),
       missing=st.booleans())
def test_unset_model_parameters_get_the_defaults_in_every_client(temperature, max_tokens, missing):
    # A version created without temperature / max_tokens stores them as None (or leaves them out).
    prompt = _prompt() if missing else _prompt(temperature=temperature, max_tokens=max_tokens, top_p=None, stop=[])
    for llm in (SageMakerLlm("e", container="tgi", client=object()), SageMakerLlm("e", container="djl-lmi", client=object())):
        parameters = llm.payload(prompt)["parameters"]
        assert parameters["max_new_tokens"] == (512 if missing or max_tokens is None else max_tokens)
    config = BedrockConverseLlm("m", client=object()).request(prompt)["inferenceConfig"]
    assert config["temperature"] == (0.1 if missing or temperature is None else temperature)
    assert "topP" not in config


def test_converse_maps_langchain_roles_and_merges_consecutive_turns():
    prompt = _prompt([{"role": "system", "content": "s"}, {"role": "human", "content": "q1"},
                      {"role": "human", "content": "q2"}, {"role": "ai", "content": "a"}])
    request = BedrockConverseLlm("m", client=object()).request(prompt)
    assert request["system"] == [{"text": "s"}]
    assert request["messages"] == [{"role": "user", "content": [{"text": "q1"}, {"text": "q2"}]},
                                   {"role": "assistant", "content": [{"text": "a"}]}]
    only_system = BedrockConverseLlm("m", client=object()).request(_prompt([{"role": "system", "content": "s"}]))
    assert only_system["messages"] == [{"role": "user", "content": [{"text": "s"}]}] and "system" not in only_system


def test_stop_sequences_are_checked_against_the_target_containers_limit():
    prompt = _prompt(stop=["a", "b", "c", "d", "e"])
    with pytest.raises(PromptIncompatible, match=r"prompt p v2 has 5 stop sequences; the TGI container \(MAX_STOP_SEQUENCES\) accepts at most 4"):
        SageMakerLlm("e", container="tgi", client=object()).payload(prompt)
    # A TGI launched with a higher MAX_STOP_SEQUENCES, and vLLM-based LMI, take them.
    assert SageMakerLlm("e", container="tgi", client=object(), max_stop_sequences=8).payload(prompt)["parameters"]["stop"] == list("abcde")
    assert SageMakerLlm("e", container="djl-lmi", client=object()).payload(prompt)["parameters"]["stop_sequences"] == list("abcde")
    with pytest.raises(PromptIncompatible, match="Bedrock model m accepts at most 2"):
        BedrockConverseLlm("m", client=object(), max_stop_sequences=2).request(prompt)
