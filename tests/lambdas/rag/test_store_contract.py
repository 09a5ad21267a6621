"""What every backend shares: the VectorStore signatures and one definition of filter types.

Filters are checked per backend against the real engine where one runs here (PostgreSQL +
pgvector), the OpenSearch test double that holds documents, and Kendra's request builder.
"""

from __future__ import annotations

import importlib
import inspect
import random

import pytest

from lambdas.runtime.rag.kendra import KendraRetriever
from lambdas.runtime.rag.model import Chunk
from lambdas.runtime.rag.opensearch import OpenSearchVectorStore, make_client
from lambdas.runtime.rag.store import BACKENDS, FILTER_FIELDS, VectorStore, check_filters
from tests.lambdas.aoss_capture import CaptureServer
from tests.lambdas.rag.test_opensearch_store import CREDS, REGION

WRONG_TYPES = [({"page": "1"}, "page.*integer"), ({"page": True}, "page.*integer"), ({"page": 1.0}, "page.*integer"),
               ({"language": 1}, "language.*string"), ({"source_key": None}, "source_key.*string")]


def backend_classes():
    for name, target in sorted(BACKENDS.items()):
        module, cls = target.split(":")
        yield name, getattr(importlib.import_module(module), cls)


@pytest.mark.parametrize(("name", "cls"), list(backend_classes()))
def test_every_backend_has_the_protocols_methods_with_its_parameters(name, cls):
    for method in ("ensure_schema", "upsert", "delete_document", "search"):
        wanted = inspect.signature(getattr(VectorStore, method)).parameters
        have = inspect.signature(getattr(cls, method)).parameters
        assert [(p.name, p.kind) for p in have.values()] == [(p.name, p.kind) for p in wanted.values()], (name, method)
    assert set(cls.FILTERABLE_FIELDS) <= set(FILTER_FIELDS), name


@pytest.mark.parametrize(("filters", "message"), WRONG_TYPES)
def test_check_filters_refuses_values_of_another_type(filters, message):
    with pytest.raises(ValueError, match=message):
        check_filters(filters, frozenset(FILTER_FIELDS))


def chunks(document_id, rng):
    return [Chunk(f"{document_id}-{page}", document_id, f"page {page}",
                  {"page": page, "language": "en" if page % 2 else "de", "source_key": f"k/{document_id}"},
                  tuple(rng.gauss(0, 1) for _ in range(384)))
            for page in range(1, 7)]


@pytest.fixture()
def opensearch():
    with CaptureServer() as state:
        yield OpenSearchVectorStore(make_client(state.url, REGION, credentials=CREDS), "rag-chunks", dimension=384,
                                    settle_seconds=0)


@pytest.mark.postgres
def test_pgvector_and_opensearch_agree_on_every_filter(store, opensearch):
    rng = random.Random(7)
    for backend in (store, opensearch):
        for document_id in ("a", "b"):
            backend.upsert(document_id, chunks(document_id, random.Random(document_id)))
    query = [rng.gauss(0, 1) for _ in range(384)]
    for filters in ({"page": 2}, {"language": "de"}, {"document_id": "b", "page": 3}, {"source_key": "k/a"},
                    {"page": 99}):
        found = [{h.chunk.chunk_id for h in backend.search(query, 20, filters)} for backend in (store, opensearch)]
        assert found[0] == found[1], filters
    assert {h.chunk.chunk_id for h in store.search(query, 20, {"page": 2})} == {"a-2", "b-2"}


@pytest.mark.postgres
@pytest.mark.parametrize(("filters", "message"), WRONG_TYPES)
def test_pgvector_refuses_a_filter_of_the_wrong_type(store, filters, message):
    with pytest.raises(ValueError, match=message):
        store.search([0.1] * 384, 3, filters)


@pytest.mark.parametrize(("filters", "message"), WRONG_TYPES)
def test_opensearch_refuses_a_filter_of_the_wrong_type(opensearch, filters, message):
    with pytest.raises(ValueError, match=message):
        opensearch.search([0.1] * 384, 3, filters)


@pytest.mark.parametrize(("filters", "message"), [f for f in WRONG_TYPES if not f[0].keys() & {"page"}])
def test_kendra_refuses_a_filter_of_the_wrong_type(filters, message):
    with pytest.raises(ValueError, match=message):
        KendraRetriever("0123456789abcdef0123456789abcdef", client=object()).retrieve_request("q", 3, filters)


def test_kendra_offers_a_subset_and_names_what_it_cannot_filter():
    kendra = KendraRetriever("0123456789abcdef0123456789abcdef", client=object())
    assert kendra.retrieve_request("q", 3, {"language": "en"})["AttributeFilter"] == {
        "EqualsTo": {"Key": "_language_code", "Value": {"StringValue": "en"}}}
    with pytest.raises(ValueError, match="unknown filter field.*page"):
        kendra.retrieve_request("q", 3, {"page": 1})


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                        st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@given(name=st.sampled_from(sorted(FILTER_FIELDS)), value=JSON_VALUES)
def test_a_filter_is_accepted_exactly_when_its_value_has_the_fields_type(name, value):
    expected = FILTER_FIELDS[name]
    fits = isinstance(value, expected) and not isinstance(value, bool)
    if fits:
        assert check_filters({name: value}, frozenset(FILTER_FIELDS)) == {name: value}
    else:
        with pytest.raises(ValueError, match=name):
            check_filters({name: value}, frozenset(FILTER_FIELDS))
