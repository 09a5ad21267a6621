"""Embedding and LLM clients at the request level (botocore Stubber with the APIs' real shapes)."""

from __future__ import annotations

import json
from io import BytesIO

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from lambdas.runtime.prompt_catalog.model import RenderedPrompt
from lambdas.runtime.rag.embedders import BedrockTitanEmbedder, EmbeddingError, SageMakerEmbedder, embedder_from_env
from lambdas.runtime.rag.llm import SageMakerLlm, language_model_from_env


def body(payload) -> StreamingBody:
    raw = json.dumps(payload).encode()
    return StreamingBody(BytesIO(raw), len(raw))


class JsonBody:
    """Matches a request body and keeps it as JSON for assertions."""

    def __init__(self) -> None:
        self.seen: list = []

    def __eq__(self, other) -> bool:
        self.seen.append(json.loads(other))
        return True

    def __ne__(self, other) -> bool:
        return not self.__eq__(other)


@pytest.fixture
def runtime():
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield client, stub


def test_sagemaker_embedder_batches_and_accepts_both_answer_shapes(runtime):
    client, stub = runtime
    sent = JsonBody()
    params = {"EndpointName": "embed", "ContentType": "application/json", "Accept": "application/json", "Body": sent}
    stub.add_response("invoke_endpoint", {"Body": body([[0.1, 0.2, 0.3]] * 2)}, params)
    stub.add_response("invoke_endpoint", {"Body": body({"embedding": [[0.4, 0.5, 0.6]]})}, params)
    vectors = SageMakerEmbedder("embed", dimension=3, client=client, batch_size=2).embed_documents(["a", "b", "c"])
    assert vectors == [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]
    assert sent.seen == [{"inputs": ["a", "b"]}, {"inputs": ["c"]}]


@pytest.mark.parametrize(("answer", "message"), [
    ([[[0.1, 0.2, 0.3]]], "token-level features"),
    ([[0.1, 0.2]], "2-dimensional vector; EMBEDDING_DIMENSION is 3"),
    ({"error": "model crashed"}, "did not return a list of vectors"),
    ([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]], "returned 2 vectors for 1 inputs"),
])
def test_sagemaker_embedder_refuses_answers_that_are_not_one_vector_per_input(runtime, answer, message):
    client, stub = runtime
    stub.add_response("invoke_endpoint", {"Body": body(answer)})
    with pytest.raises(EmbeddingError, match=message):
        SageMakerEmbedder("embed", dimension=3, client=client).embed_query("a")


def test_bedrock_titan_v2_request_and_answer():
    client = boto3.client("bedrock-runtime", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    sent = JsonBody()
    with Stubber(client) as stub:
        for value in (0.25, 0.5):
            stub.add_response("invoke_model", {"body": body({"embedding": [value] * 4, "inputTextTokenCount": 3}),
                                               "contentType": "application/json"},
                              {"modelId": "amazon.titan-embed-text-v2:0", "contentType": "application/json",
                               "accept": "application/json", "body": sent})
        embedder = BedrockTitanEmbedder("amazon.titan-embed-text-v2:0", dimension=4, client=client, max_workers=1)
        assert embedder.embed_documents(["first", "second"]) == [[0.25] * 4, [0.5] * 4]
    assert sent.seen == [{"inputText": "first", "dimensions": 4, "normalize": True},
                         {"inputText": "second", "dimensions": 4, "normalize": True}]


def prompt(**parameters) -> RenderedPrompt:
    return RenderedPrompt(text="Context: ...\nQuestion: q\nAnswer:", prompt_id="rag-answer", version=3,
                          content_hash="abc", model_parameters=parameters)


def test_tgi_payload_asks_for_token_details_and_greedy_decoding_at_temperature_zero():
    llm = SageMakerLlm("llm", container="tgi", client=object())
    payload = llm.payload(prompt(temperature=0, max_tokens=64, stop=["\n\n"]))
    assert payload == {"inputs": "Context: ...\nQuestion: q\nAnswer:",
                       "parameters": {"max_new_tokens": 64, "details": True, "decoder_input_details": True,
                                      "do_sample": False, "return_full_text": False, "stop": ["\n\n"]}}
    lmi = SageMakerLlm("llm", container="djl-lmi", client=object()).payload(prompt(temperature=0.7, stop=["###"]))
    assert lmi["parameters"]["stop_sequences"] == ["###"] and lmi["parameters"]["temperature"] == 0.7
    assert "return_full_text" not in lmi["parameters"]


@pytest.mark.parametrize(("environ", "message"), [
    ({"EMBEDDING_PROVIDER": "openai"}, "EMBEDDING_PROVIDER='openai' is not supported"),
    ({"EMBEDDING_PROVIDER": "sagemaker"}, "EMBEDDING_ENDPOINT_NAME must be set"),
    ({"EMBEDDING_PROVIDER": "bedrock"}, "EMBEDDING_MODEL_ID must be set"),
])
def test_embedder_configuration_errors_name_the_variable(environ, message):
    with pytest.raises(ValueError, match=message):
        embedder_from_env(environ)


@pytest.mark.parametrize(("environ", "message"), [
    ({"LLM_PROVIDER": "sagemaker"}, "LLM_ENDPOINT_NAME must be set"),
    ({"LLM_PROVIDER": "bedrock"}, "LLM_MODEL_ID must be set"),
    ({"LLM_PROVIDER": "sagemaker", "LLM_ENDPOINT_NAME": "e", "LLM_CONTAINER": "openai"}, "LLM_CONTAINER must be 'tgi', 'djl-lmi' or 'vllm'"),
    ({"LLM_PROVIDER": "gpt"}, "LLM_PROVIDER='gpt' is not supported"),
    ({"LLM_PROVIDER": "bedrock", "LLM_MODEL_ID": "m", "LLM_MAX_STOP_SEQUENCES": "four"}, "LLM_MAX_STOP_SEQUENCES must be a whole number"),
])
def test_llm_configuration_errors_name_the_variable(environ, message, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with pytest.raises(ValueError, match=message):
        language_model_from_env(environ)


def test_no_llm_configured_means_extractive_answers():
    assert language_model_from_env({}) is None and language_model_from_env({"LLM_PROVIDER": "none"}) is None


def test_the_stop_sequence_limit_follows_the_container_settings(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    tgi = {"LLM_PROVIDER": "sagemaker", "LLM_ENDPOINT_NAME": "e", "LLM_CONTAINER": "tgi"}
    assert language_model_from_env(tgi).max_stop_sequences == 4  # TGI's MAX_STOP_SEQUENCES default
    assert language_model_from_env({**tgi, "LLM_MAX_STOP_SEQUENCES": "10"}).max_stop_sequences == 10
    assert language_model_from_env({**tgi, "LLM_CONTAINER": "djl-lmi"}).max_stop_sequences is None


def test_vllm_container_gets_openai_completions_and_its_answer_is_read():
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    llm = SageMakerLlm("llm-vllm", container="vllm", client=client)
    expected = {"prompt": "Context: ...\nQuestion: q\nAnswer:", "max_tokens": 64, "temperature": 0.2, "stop": ["###"]}
    assert llm.payload(prompt(temperature=0.2, max_tokens=64, stop=["###"])) == expected
    body = json.dumps({"object": "text_completion", "choices": [{"index": 0, "text": " Five days [1].", "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 12, "completion_tokens": 5}}).encode()
    stub = Stubber(client)
    stub.add_response("invoke_endpoint", {"Body": StreamingBody(BytesIO(body), len(body)), "ContentType": "application/json"},
                      {"EndpointName": "llm-vllm", "ContentType": "application/json", "Accept": "application/json",
                       "Body": json.dumps(expected)})
    with stub:
        generation = llm.generate(prompt(temperature=0.2, max_tokens=64, stop=["###"]))
    assert (generation.text, generation.prompt_tokens, generation.completion_tokens) == ("Five days [1].", 12, 5)
