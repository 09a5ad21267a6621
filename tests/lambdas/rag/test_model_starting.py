"""Scale-to-zero LLM endpoints host an inference component: invocations name it, and no capacity is "model is starting"."""

from __future__ import annotations

import json
from io import BytesIO

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from lambdas.runtime.prompt_catalog.model import RenderedPrompt
from lambdas.runtime.rag.llm import SageMakerLlm, language_model_from_env
from lambdas.runtime.rag.prompting import DefaultPromptSource
from lambdas.runtime.rag.query import QueryPipeline
from lambdas.runtime.rag.retry import ModelStarting
from tests.lambdas.rag.test_rag_query import env, indexed, query_handler  # noqa: F401  (fixtures)

# The message SageMaker Runtime returns while an inference component has no copies.
NO_CAPACITY = ("Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress "
               "(if configured) or try to increase the capacity by invoking UpdateInferenceComponentRuntimeConfig API.")


def runtime() -> tuple:
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def prompt() -> RenderedPrompt:
    return RenderedPrompt(text="Question: hi", prompt_id="rag-answer", version=1, content_hash="0" * 64,
                          model_parameters={"max_tokens": 8})


def test_the_inference_component_is_named_in_the_request():
    client, stub = runtime()
    raw = json.dumps({"generated_text": "hello"}).encode()
    stub.add_response("invoke_endpoint", {"Body": StreamingBody(BytesIO(raw), len(raw)), "ContentType": "application/json"},
                      {"EndpointName": "llmops-dev-llm", "InferenceComponentName": "llmops-dev-llm-primary",
                       "ContentType": "application/json", "Accept": "application/json", "Body": ANY})
    with stub:
        llm = SageMakerLlm("llmops-dev-llm", container="djl-lmi", client=client, inference_component="llmops-dev-llm-primary")
        assert llm.generate(prompt()).text == "hello"


def test_no_capacity_becomes_model_starting_and_other_validation_errors_do_not():
    client, stub = runtime()
    stub.add_client_error("invoke_endpoint", service_error_code="ValidationError", service_message=NO_CAPACITY,
                          http_status_code=400)
    stub.add_client_error("invoke_endpoint", service_error_code="ValidationError",
                          service_message="Endpoint llmops-dev-llm of account 123456789012 not found.", http_status_code=400)
    with stub:
        llm = SageMakerLlm("llmops-dev-llm", container="djl-lmi", client=client, sleep=lambda s: None)
        with pytest.raises(ModelStarting, match="model is starting: SageMaker endpoint llmops-dev-llm has no capacity yet"):
            llm.generate(prompt())
        with pytest.raises(ClientError, match="not found"):
            llm.generate(prompt())


def test_the_component_name_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    llm = language_model_from_env({"LLM_PROVIDER": "sagemaker", "LLM_ENDPOINT_NAME": "e", "LLM_CONTAINER": "djl-lmi",
                                   "LLM_INFERENCE_COMPONENT": "e-primary"})
    assert llm.inference_component == "e-primary"


@pytest.mark.postgres
def test_query_through_the_inference_component_answers_503_model_is_starting(env, indexed, embedder):  # noqa: F811
    client, stub = runtime()
    stub.add_client_error("invoke_endpoint", service_error_code="ValidationError", service_message=NO_CAPACITY,
                          http_status_code=400, expected_params={
                              "EndpointName": "llmops-dev-llm", "InferenceComponentName": "llmops-dev-llm-primary",
                              "ContentType": "application/json", "Accept": "application/json", "Body": ANY})
    stub.activate()
    llm = SageMakerLlm("llmops-dev-llm", container="djl-lmi", client=client, inference_component="llmops-dev-llm-primary")
    env.setattr(query_handler, "pipeline", lambda: QueryPipeline(indexed, embedder, DefaultPromptSource(), llm))
    response = query_handler.handler(_event(), _context())
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["message"].startswith("model is starting: SageMaker endpoint llmops-dev-llm")
    assert json.loads(response["body"])["reason"] == "model is starting"
    stub.assert_no_pending_responses()


def _event():
    from tests.lambdas.rag.events import api_event

    return api_event({"question": "How long is the laptop warranty?"})


def _context():
    from tests.lambdas.rag.events import LambdaContext

    return LambdaContext()
