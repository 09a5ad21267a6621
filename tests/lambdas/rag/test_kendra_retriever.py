"""KendraRetriever against botocore's Stubber (moto has no Kendra), with Retrieve's documented shapes."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.runtime.rag.kendra import KendraRetriever
from lambdas.runtime.rag.store import store_from_env

INDEX_ID = "0123abcd-4567-89ef-0123-456789abcdef"


@pytest.fixture()
def kendra():
    client = boto3.client("kendra", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


# Shape of a Retrieve response, as in the Amazon Kendra API reference (RetrieveResultItem).
RESPONSE = {
    "QueryId": "q-1",
    "ResultItems": [
        {"Id": "r-1", "DocumentId": "s3://bucket/uploads/handbook.pdf", "DocumentTitle": "Handbook",
         "Content": "Expenses are approved by the line manager.", "DocumentURI": "s3://bucket/uploads/handbook.pdf",
         "DocumentAttributes": [{"Key": "_excerpt_page_number", "Value": {"LongValue": 4}}],
         "ScoreAttributes": {"ScoreConfidence": "HIGH"}},
        {"Id": "r-2", "DocumentId": "s3://bucket/uploads/faq.txt", "Content": "Travel is booked centrally.",
         "ScoreAttributes": {"ScoreConfidence": "LOW"}},
    ],
}


def test_search_text_sends_retrieve_and_maps_results(kendra):
    client, stubber = kendra
    stubber.add_response("retrieve", RESPONSE, {
        "IndexId": INDEX_ID, "QueryText": "who approves expenses?", "PageSize": 3,
        "AttributeFilter": {"EqualsTo": {"Key": "_language_code", "Value": {"StringValue": "en"}}},
    })
    hits = KendraRetriever(INDEX_ID, client=client).search_text("who approves expenses?", 3, {"language": "en"})
    assert [h.chunk.chunk_id for h in hits] == ["r-1", "r-2"]
    assert [h.score for h in hits] == [0.75, 0.25]
    assert hits[0].chunk.metadata == {"source_key": "s3://bucket/uploads/handbook.pdf", "title": "Handbook", "page": 4}
    assert hits[0].chunk.text.startswith("Expenses")


def test_several_filters_are_and_combined(kendra):
    client, _ = kendra
    request = KendraRetriever(INDEX_ID, client=client).retrieve_request("q", 2, {"language": "de", "document_type": "PDF"})
    assert request["AttributeFilter"] == {"AndAllFilters": [
        {"EqualsTo": {"Key": "_file_type", "Value": {"StringValue": "PDF"}}},
        {"EqualsTo": {"Key": "_language_code", "Value": {"StringValue": "de"}}},
    ]}


def test_service_errors_are_raised_not_swallowed(kendra):
    client, stubber = kendra
    stubber.add_client_error("retrieve", service_error_code="ThrottlingException", http_status_code=400)
    with pytest.raises(client.exceptions.ThrottlingException):
        KendraRetriever(INDEX_ID, client=client).search_text("q", 1)


@pytest.mark.parametrize("question,k,filters,message", [
    ("", 3, None, "question must not be empty"), ("x" * 1001, 3, None, "at most 1000"),
    ("q", 0, None, "k must be"), ("q", 3, {"page": 1}, "unknown filter field"),
])
def test_bad_requests_are_named_before_calling_kendra(kendra, question, k, filters, message):
    client, _ = kendra
    with pytest.raises(ValueError, match=message):
        KendraRetriever(INDEX_ID, client=client).search_text(question, k, filters)


def test_vector_search_and_writes_refuse_with_a_reason(kendra):
    client, _ = kendra
    retriever = KendraRetriever(INDEX_ID, client=client)
    with pytest.raises(TypeError, match="search_text"):
        retriever.search([0.1, 0.2], 3)
    with pytest.raises(NotImplementedError, match="S3 data source"):
        retriever.upsert("d", [])


def test_store_from_env_builds_it(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    store = store_from_env({"VECTOR_STORE_BACKEND": "kendra", "KENDRA_INDEX_ID": INDEX_ID, "AWS_REGION": "eu-west-1"})
    assert isinstance(store, KendraRetriever) and store.index_id == INDEX_ID
    with pytest.raises(ValueError, match="KENDRA_INDEX_ID"):
        store_from_env({"VECTOR_STORE_BACKEND": "kendra"})
