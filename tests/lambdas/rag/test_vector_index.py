"""The vector_index custom resource against a request-capturing server on 127.0.0.1."""

from __future__ import annotations

from functools import partial

import pytest

from lambdas.runtime.rag.opensearch import concrete_index_name, index_body
from lambdas.rag_vector_index import handler as vector_index
from tests.lambdas.aoss_capture import CaptureServer
from tests.lambdas.context import LambdaContext as LambdaContextBase

LambdaContext = partial(LambdaContextBase, function_name="vector-index", remaining_ms=600_000)



@pytest.fixture()
def aoss(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "vector_index")
    sleeps: list[float] = []
    monkeypatch.setattr(vector_index.time, "sleep", sleeps.append)
    with CaptureServer() as state:
        state.sleeps = sleeps
        yield state


def event(aoss, request_type, physical_id=None, **overrides):
    props = {"ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:provider",
             "CollectionEndpoint": aoss.url, "Alias": "rag-chunks", "Dimension": "4", "Space": "cosinesimil",
             "RemovalPolicy": "destroy", **overrides}
    raw = {"RequestType": request_type, "ServiceToken": props["ServiceToken"], "ResponseURL": "https://example.invalid/",
           "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/rag/1", "RequestId": "r1",
           "LogicalResourceId": "VectorIndex", "ResourceType": "Custom::VectorIndex", "ResourceProperties": props}
    if physical_id:
        raw["PhysicalResourceId"] = physical_id
    return raw


def test_create_makes_the_versioned_index_and_alias(aoss):
    result = vector_index.handler(event(aoss, "Create"), LambdaContext())
    name = concrete_index_name("rag-chunks", index_body(4))
    assert result == {"PhysicalResourceId": name, "Data": {"IndexName": name, "Alias": "rag-chunks",
                                                          "Created": "true", "ReindexRequired": "false"}}
    assert aoss.indexes[name] == index_body(4)
    assert aoss.aliases["rag-chunks"] == {name}
    assert "/aoss/aws4_request" in aoss.of("PUT")[0].headers["authorization"]


def test_403_while_access_rules_propagate_is_retried_with_backoff(aoss):
    aoss.fail_next(403, 3)
    result = vector_index.handler(event(aoss, "Create"), LambdaContext())
    assert result["Data"]["Created"] == "true"
    assert aoss.sleeps == [2.0, 4.0, 8.0]


def test_403_until_the_deadline_is_reported_not_swallowed(aoss):
    aoss.fail_next(403, 100)
    with pytest.raises(vector_index.AccessNotGranted, match="data-access policy names this function's role"):
        vector_index.handler(event(aoss, "Create"), LambdaContext(remaining_ms=31_000))
    assert aoss.indexes == {}


def test_update_with_the_same_mapping_keeps_the_physical_id(aoss):
    first = vector_index.handler(event(aoss, "Create"), LambdaContext())
    again = vector_index.handler(event(aoss, "Update", first["PhysicalResourceId"], RemovalPolicy="retain"), LambdaContext())
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert again["Data"]["ReindexRequired"] == "false"
    assert len(aoss.of("PUT")) == 1


def test_mapping_change_creates_a_new_index_moves_the_alias_then_retires_the_old(aoss):
    first = vector_index.handler(event(aoss, "Create"), LambdaContext())
    second = vector_index.handler(event(aoss, "Update", first["PhysicalResourceId"], Dimension="8"), LambdaContext())
    assert second["PhysicalResourceId"] != first["PhysicalResourceId"]
    assert second["Data"] == {"IndexName": second["PhysicalResourceId"], "Alias": "rag-chunks",
                              "Created": "true", "ReindexRequired": "true"}
    assert aoss.aliases["rag-chunks"] == {second["PhysicalResourceId"]}
    # CloudFormation's cleanup Delete for the old physical id removes only the old index.
    vector_index.handler(event(aoss, "Delete", first["PhysicalResourceId"], Dimension="8"), LambdaContext())
    assert set(aoss.indexes) == {second["PhysicalResourceId"]}


def test_delete_with_retain_keeps_the_index(aoss):
    created = vector_index.handler(event(aoss, "Create"), LambdaContext())
    vector_index.handler(event(aoss, "Delete", created["PhysicalResourceId"], RemovalPolicy="retain"), LambdaContext())
    assert created["PhysicalResourceId"] in aoss.indexes
    assert aoss.of("DELETE") == []


def test_delete_with_destroy_deletes_and_tolerates_a_missing_index(aoss):
    created = vector_index.handler(event(aoss, "Create"), LambdaContext())
    vector_index.handler(event(aoss, "Delete", created["PhysicalResourceId"]), LambdaContext())
    assert aoss.indexes == {} and aoss.aliases["rag-chunks"] == set()
    vector_index.handler(event(aoss, "Delete", created["PhysicalResourceId"]), LambdaContext())  # already gone
    assert len(aoss.of("DELETE")) == 2


def test_delete_of_a_foreign_physical_id_touches_nothing(aoss):
    vector_index.handler(event(aoss, "Delete", "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"), LambdaContext())
    assert aoss.requests == []


@pytest.mark.parametrize("override,message", [({"Dimension": "many"}, "Dimension must be an integer"),
                                              ({"Space": "cosine"}, "Space must be one of"),
                                              ({"RemovalPolicy": "snapshot"}, "RemovalPolicy"),
                                              ({"Alias": ""}, "missing resource properties: Alias")])
def test_bad_properties_are_named(aoss, override, message):
    with pytest.raises(ValueError, match=message):
        vector_index.handler(event(aoss, "Create", **override), LambdaContext())
    assert aoss.requests == []
