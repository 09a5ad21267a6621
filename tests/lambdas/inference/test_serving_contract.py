"""The serving-container contract without a model: every shape parsed, every bad body a 4xx with its reason."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.runtime.inference.local_model import LocalGeneration, TokenInfo
from lambdas.runtime.inference.serving_contract import (
    ContractError,
    Limits,
    chat_response,
    generate_response,
    model_error,
    parse_invocation,
)


def parse(payload, **kwargs):
    return parse_invocation(json.dumps(payload).encode(), **kwargs)


def test_tgi_inputs_and_parameters():
    request = parse({"inputs": "Hi", "parameters": {"max_new_tokens": 16, "do_sample": True, "temperature": 0.5,
                                                    "top_p": 0.9, "top_k": 40, "stop": ["\n", "###"], "seed": 7,
                                                    "details": True, "return_full_text": False}})
    assert (request.kind, request.prompt, request.max_new_tokens, request.do_sample) == ("generate", "Hi", 16, True)
    assert (request.temperature, request.top_p, request.top_k, request.seed) == (0.5, 0.9, 40, 7)
    assert request.stop == ("\n", "###") and request.details and not request.return_full_text


def test_defaults_follow_each_container():
    tgi = parse({"inputs": "Hi"})
    lmi = parse({"inputs": "Hi"}, container="djl-lmi")
    assert tgi.return_full_text and not lmi.return_full_text  # TGI's /invocations echoes the prompt by default
    assert tgi.max_new_tokens == lmi.max_new_tokens == Limits().default_new_tokens
    assert not tgi.do_sample and tgi.stop == ()


def test_lmi_stop_sequences_spelling():
    assert parse({"inputs": "Hi", "parameters": {"stop_sequences": ["."]}}, container="djl-lmi").stop == (".",)


def test_chat_completions_with_text_parts_and_a_single_stop_string():
    request = parse({"model": "tgi", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "text", "text": "RAG?"}]},
    ], "max_tokens": 32, "temperature": 0, "stop": "\n\n", "seed": 1})
    assert request.kind == "chat" and request.model == "tgi"
    assert request.messages == ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is RAG?"})
    assert (request.max_new_tokens, request.do_sample, request.stop) == (32, False, ("\n\n",))  # temperature 0: greedy
    assert parse({"messages": [{"role": "user", "content": "x"}], "temperature": 0.7}).do_sample


BAD_BODIES = [
    (b"{not json", 400, "not JSON"),
    (b"\xff\xfe", 400, "not JSON"),
    (b"[1, 2]", 422, "must be a JSON object, got array"),
    (b"{}", 422, "needs `inputs` (text generation) or `messages`"),
    ({"inputs": ""}, 422, "`inputs` cannot be empty"),
    ({"inputs": ["a", "b"]}, 422, "`inputs` must be a string, got array"),
    ({"inputs": "x", "parameters": []}, 422, "`parameters` must be an object"),
    ({"inputs": "x", "parameters": {"max_new_tokens": 0}}, 422, "`max_new_tokens` must be between 1 and 1024. Given: 0"),
    ({"inputs": "x", "parameters": {"max_new_tokens": 5000}}, 422, "between 1 and 1024. Given: 5000"),
    ({"inputs": "x", "parameters": {"max_new_tokens": "16"}}, 422, "`max_new_tokens` must be an integer, got string"),
    ({"inputs": "x", "parameters": {"max_new_tokens": True}}, 422, "must be an integer, got boolean"),
    ({"inputs": "x", "parameters": {"temperature": 0}}, 422, "`temperature` must be strictly positive"),
    ({"inputs": "x", "parameters": {"top_p": 1.5}}, 422, "`top_p` must be > 0.0 and <= 1.0"),
    ({"inputs": "x", "parameters": {"top_k": 0}}, 422, "`top_k` must be >= 1"),
    ({"inputs": "x", "parameters": {"do_sample": "yes"}}, 422, "`do_sample` must be a boolean"),
    ({"inputs": "x", "parameters": {"stop": ["a", "b", "c", "d", "e"]}}, 422,
     "`stop` supports up to 4 stop sequences. Given: 5"),
    ({"inputs": "x", "parameters": {"stop": "."}}, 422, "`stop` must be a list of strings"),
    ({"inputs": "x", "parameters": {"stop": [""]}}, 422, "must not contain an empty string"),
    ({"inputs": "x", "parameters": {"stop": ["."], "stop_sequences": ["."]}}, 422, "not both"),
    ({"inputs": "x", "parameters": {"max_length": 20}}, 422, "unknown parameter: max_length; allowed: decoder_input"),
    ({"inputs": "x", "stream": True}, 422, "`stream` = true is not supported"),
    ({"messages": []}, 422, "`messages` must be a non-empty list"),
    ({"messages": "hi"}, 422, "`messages` must be a non-empty list"),
    ({"messages": [{"role": "tool", "content": "x"}]}, 422, "`messages[0].role` must be one of system, user, assistant"),
    ({"messages": [{"content": "x"}]}, 422, "`messages[0].role` must be one of"),
    ({"messages": [{"role": "user", "content": 3}]}, 422, "`messages[0].content` must be a string or a list"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 422,
     "this model reads text only"),
    ({"messages": [{"role": "user", "content": ""}]}, 422, "cannot all be empty"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}, 422, "`max_tokens` must be between 1"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": 3}, 422, "`temperature` must be >= 0.0 and <= 2.0"),
    ({"messages": [{"role": "user", "content": "x"}], "stop": ["1", "2", "3", "4", "5"]}, 422, "up to 4 stop sequences"),
    ({"messages": [{"role": "user", "content": "x"}], "n": 2}, 422, "`n` must be 1 here"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": True}, 422, "`stream` must be false here"),
    ({"messages": [{"role": "user", "content": "x"}], "tools": []}, 422, "unknown field: tools"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": float("nan")}, 422, "must be an integer"),
]


@pytest.mark.parametrize(("body", "status", "reason"), BAD_BODIES)
def test_bad_bodies_get_a_4xx_and_the_reason(body, status, reason):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(ContractError) as caught:
        parse_invocation(raw)
    assert caught.value.status == status
    assert reason in caught.value.message
    assert caught.value.body()["error"] == caught.value.message


def test_oversized_body_is_413_before_parsing():
    with pytest.raises(ContractError) as caught:
        parse_invocation(b"x" * 101, Limits(payload_limit=100))
    assert caught.value.status == 413 and "101 bytes; the limit is 100" in caught.value.message


def test_an_unknown_container_is_a_programming_error():
    with pytest.raises(ValueError, match="container must be one of tgi, djl-lmi"):
        parse({"inputs": "x"}, container="vllm")


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                      max_size=4), max_leaves=12)
KEYS = st.sampled_from(["inputs", "parameters", "messages", "max_tokens", "stop", "temperature", "stream", "role",
                        "content", "max_new_tokens", "top_p", "seed", "n"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=64), JSON.map(lambda v: json.dumps(v).encode()),
                 st.dictionaries(KEYS, JSON | st.dictionaries(KEYS, JSON, max_size=4), max_size=4)
                 .map(lambda v: json.dumps(v).encode())))
def test_any_body_is_parsed_or_refused_with_a_4xx(raw):
    try:
        request = parse_invocation(raw)
    except ContractError as exc:
        assert 400 <= exc.status < 500 and exc.message
    else:
        assert request.kind in ("generate", "chat") and 1 <= request.max_new_tokens <= 1024
        assert request.prompt or any(m["content"] for m in request.messages)


RESULT = LocalGeneration(text=" Paris", model="local:smollm2-135m-instruct", prompt_tokens=5, completion_tokens=2,
                         finish_reason="stop_sequence", first_token_latency_s=0.1, total_s=0.2, stop_sequence=".",
                         tokens=(TokenInfo(7042, " Paris", -0.25), TokenInfo(30, ".", -0.38)),
                         prefill=(TokenInfo(504, "The", None),))


def test_tgi_answer_is_a_list_that_keeps_the_stop_sequence_and_echoes_the_prompt_by_default():
    answer = generate_response(parse({"inputs": "The capital of France is", "parameters": {"details": True}}), RESULT)
    assert answer[0]["generated_text"] == "The capital of France is Paris."
    assert answer[0]["details"]["finish_reason"] == "stop_sequence" and answer[0]["details"]["generated_tokens"] == 2
    assert answer[0]["details"]["tokens"][0] == {"id": 7042, "text": " Paris", "logprob": -0.25, "special": False}
    assert answer[0]["details"]["prefill"][0]["logprob"] is None


def test_lmi_answer_is_an_object_without_the_stop_sequence():
    request = parse({"inputs": "The capital of France is", "parameters": {"details": True}}, container="djl-lmi")
    answer = generate_response(request, RESULT, container="djl-lmi")
    assert answer["generated_text"] == " Paris"
    assert answer["details"]["inputs"] == "The capital of France is" and "log_prob" in answer["details"]["tokens"][0]


def test_chat_answer_is_an_openai_chat_completion():
    answer = chat_response(parse({"messages": [{"role": "user", "content": "x"}], "model": "m"}), RESULT, created=1)
    assert answer["object"] == "chat.completion" and answer["model"] == "m" and answer["created"] == 1
    assert answer["choices"][0] == {"index": 0, "message": {"role": "assistant", "content": " Paris"},
                                    "logprobs": None, "finish_reason": "stop"}
    assert answer["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def test_sagemaker_model_error_wraps_the_container_status():
    error = model_error(422, "`inputs` cannot be empty", "dev-llm")
    assert error["OriginalStatusCode"] == 422 and error["Message"].startswith("Received client error (422)")
    assert model_error(500, "boom", "dev-llm")["Message"].startswith("Received server error (500)")
