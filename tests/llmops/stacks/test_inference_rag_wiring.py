"""The RAG query names the inference component of a scale-to-zero LLM endpoint (InvokeEndpoint needs it)."""

from __future__ import annotations

from tests.helpers import template_of
from tests.llmops.stacks.test_rag_stack import functions, stage


def query_env(stage_):
    (query,) = [r for r in functions(template_of(stage_.rag)).values() if "LLM_ENDPOINT_NAME" in str(r)]
    return query["Properties"]["Environment"]["Variables"]


def test_scale_to_zero_endpoint_component_is_passed_to_the_query_function():
    dev = stage("dev")
    assert dev.inference.llm.component_name == "llmops-dev-llm-primary"
    assert query_env(dev)["LLM_INFERENCE_COMPONENT"] == "llmops-dev-llm-primary"


def test_endpoints_without_components_are_invoked_by_endpoint_name_only():
    staging = stage("staging")  # target tracking: the model sits on the variant, no component
    assert "LLM_INFERENCE_COMPONENT" not in query_env(staging)
    named = stage("dev", rag={"llm_endpoint_name": "shared-llm", "llm_container": "tgi"})
    assert "LLM_INFERENCE_COMPONENT" not in query_env(named)
