"""``llmops local serve`` on 127.0.0.1 with the real model: the RAG query's SageMaker client talks to it via boto3."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config

from lambdas.runtime.inference.local_model import MODEL_ID, load_local_model
from lambdas.runtime.inference.serving_contract import Limits
from lambdas.runtime.rag.llm import SageMakerLlm
from lambdas.runtime.rag.model import Chunk, Hit
from lambdas.runtime.rag.prompting import DefaultPromptSource, format_context
from llmops.cli import main
from llmops.cli.local_serve import model_cache_dir, start_server

pytestmark = pytest.mark.xdist_group("local_model")  # shares the worker that has the model loaded

PASSAGE = "Refunds are paid within 14 days of the returned item arriving at the warehouse."


@pytest.fixture(scope="module")
def model():
    loaded = load_local_model(model_cache_dir())
    loaded.threads = 1  # test machines are shared: several OpenMP threads spin against each other there
    return loaded


@pytest.fixture(scope="module", params=["tgi", "djl-lmi"])
def server(request, model):
    server, thread = start_server(model, container=request.param, limits=Limits(payload_limit=10_000))
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def runtime(server):
    return boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="eu-west-1",
                        aws_access_key_id="local", aws_secret_access_key="local",
                        config=Config(retries={"max_attempts": 1}, read_timeout=300))


def http(server, method, path, body=None, content_type="application/json"):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=data, method=method,
                                     headers={"Content-Type": content_type} if content_type else {})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def catalog_prompt():
    """The RAG query's built-in answer prompt over one passage, greedy and short."""
    hits = [Hit(Chunk(chunk_id="c1", document_id="policy", text=PASSAGE, metadata={"source": "policy.md"}), 0.9)]
    prompt = DefaultPromptSource().render("rag-answer", {"question": "How many days until a refund is paid?",
                                                         "context": format_context(hits)})
    return dataclasses.replace(prompt, model_parameters={"temperature": 0, "max_tokens": 16, "stop": []})


def test_ping(server):
    assert http(server, "GET", "/ping") == (200, {})


def test_rag_sagemaker_client_gets_a_generated_answer(server, runtime):
    llm = SageMakerLlm("dev-llm", container=server.container, client=runtime, attempts=1)
    generation = llm.generate(catalog_prompt())
    assert generation.text and generation.model == "sagemaker:dev-llm"
    assert "14" in generation.text  # the model read the passage
    assert 1 <= generation.completion_tokens <= 16
    if server.container == "tgi":  # TGI's prefill details give the prompt's token count
        assert generation.prompt_tokens == server.model.count_tokens(catalog_prompt().text)


def test_chat_completions_through_invoke_endpoint(runtime):
    response = runtime.invoke_endpoint(EndpointName="dev-llm", ContentType="application/json", Body=json.dumps({
        "messages": [{"role": "system", "content": "Answer in one short sentence."},
                     {"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 16, "temperature": 0}))
    assert response["InvokedProductionVariant"] == "AllTraffic"
    answer = json.loads(response["Body"].read())
    assert answer["object"] == "chat.completion" and answer["model"] == MODEL_ID
    assert "Paris" in answer["choices"][0]["message"]["content"]
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] and usage["completion_tokens"] <= 16


def test_the_container_shape_of_a_plain_invocation(server):
    status, answer = http(server, "POST", "/invocations", {"inputs": "The capital of France is",
                                                           "parameters": {"max_new_tokens": 4}})
    assert status == 200
    if server.container == "tgi":  # a list, the prompt echoed (return_full_text defaults to true)
        assert answer[0]["generated_text"].startswith("The capital of France is ")
    else:
        assert set(answer) == {"generated_text"} and not answer["generated_text"].startswith("The capital")


@pytest.mark.parametrize(("method", "path", "body", "content_type", "status", "reason"), [
    ("POST", "/invocations", b"{nope", "application/json", 400, "not JSON"),
    ("POST", "/invocations", {"inputs": ""}, "application/json", 422, "`inputs` cannot be empty"),
    ("POST", "/invocations", {"messages": [{"role": "robot", "content": "x"}]}, "application/json", 422,
     "`messages[0].role` must be one of system, user, assistant"),
    ("POST", "/invocations", {"inputs": "x", "parameters": {"max_new_tokens": 100000}}, "application/json", 422,
     "`max_new_tokens` must be between 1 and 1024"),
    ("POST", "/invocations", {"inputs": "x" * 20_000}, "application/json", 413, "the limit is 10000"),
    ("POST", "/invocations", {"inputs": "x"}, "text/plain", 415, "Content-Type must be application/json"),
    ("GET", "/invocations", None, None, 405, "use POST"),
    ("POST", "/generate", {"inputs": "x"}, "application/json", 404, "no route /generate"),
])
def test_bad_requests_get_4xx_with_the_reason(server, method, path, body, content_type, status, reason):
    got, answer = http(server, method, path, body, content_type)
    assert got == status and reason in answer["error"]


def test_sagemaker_runtime_turns_a_container_4xx_into_model_error(runtime):
    with pytest.raises(runtime.exceptions.ModelError) as caught:
        runtime.invoke_endpoint(EndpointName="dev-llm", ContentType="application/json",
                                Body=json.dumps({"inputs": "x", "parameters": {"stop": ["1", "2", "3", "4", "5"]}}))
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424 and error["OriginalStatusCode"] == 422
    assert "`stop` supports up to 4 stop sequences. Given: 5" in error["OriginalMessage"]


def test_serve_refuses_bad_options(capsys):
    assert main(["local", "serve", "--port", "70000"]) == 2
    assert "--port must be between 0 and 65535, got 70000" in capsys.readouterr().err
    assert main(["local", "serve", "--max-new-tokens", "0"]) == 2
    assert "--max-new-tokens must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["local", "serve", "--container", "vllm"])
    assert "invalid choice: 'vllm'" in capsys.readouterr().err
