"""The prompt catalog REST handler on moto: every route, errors as 4xx, fuzzed input never a 5xx."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.lambdas.context import LambdaContext as LambdaContextBase

from .conftest import TEXT_CONTENT

# Read-only routes emit no metric; the handler silences Powertools' warning, pytest resets filters.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")



LambdaContext = partial(LambdaContextBase, function_name="prompt-api", remaining_ms=60_000)



def event(method: str, path: str, body: Any = None, query: dict | None = None, raw_body: str | None = None) -> dict:
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": "req-1",
            "stage": "v1",
            "httpMethod": method,
            "path": f"/v1{path}",
            "identity": {"userArn": "arn:aws:sts::123456789012:assumed-role/dev/alice", "sourceIp": "10.0.0.1"},
        },
        "body": raw_body if raw_body is not None else (json.dumps(body) if body is not None else None),
        "isBase64Encoded": False,
    }


@pytest.fixture
def api(catalog, writer_lambda):
    # As deployed: the API creates versions through the writer function (it holds no PutItem).
    from lambdas.prompt_catalog_api import handler as module

    module.get_store.cache_clear()

    def call(method: str, path: str, body: Any = None, query: dict | None = None, raw_body: str | None = None):
        response = module.handler(event(method, path, body, query, raw_body), LambdaContext())
        return response["statusCode"], json.loads(response["body"])

    yield call
    module.get_store.cache_clear()


def test_create_get_list_and_diff_versions(api):
    status, v1 = api("POST", "/prompts/faq/versions", {"content": TEXT_CONTENT, "change_note": "first", "description": "FAQ"})
    assert status == 201 and v1["version"] == 1 and v1["created"] is True
    assert v1["author"] == "arn:aws:sts::123456789012:assumed-role/dev/alice"
    changed = {**TEXT_CONTENT, "template": "Q: {question}\nC: {context}", "model_parameters": {"temperature": 0.5}}
    status, v2 = api("POST", "/prompts/faq/versions", {"content": changed})
    assert status == 201 and v2["version"] == 2
    status, same = api("POST", "/prompts/faq/versions", {"content": changed, "only_if_changed": True})
    assert (status, same["version"], same["created"]) == (200, 2, False)

    assert api("GET", "/prompts/faq/versions/1")[1]["template"] == TEXT_CONTENT["template"]
    status, listing = api("GET", "/prompts/faq/versions", query={"limit": "1"})
    assert [v["version"] for v in listing["versions"]] == [2] and listing["next_before"] == 2
    status, prompts = api("GET", "/prompts")
    assert [p["prompt_id"] for p in prompts["prompts"]] == ["faq"] and prompts["prompts"][0]["latest_version"] == 2

    status, diff = api("GET", "/prompts/faq/diff", query={"from": "1", "to": "2"})
    assert status == 200 and not diff["identical"]
    assert "-Answer {question} using {context}." in diff["template_diff"]
    assert diff["changes"]["model_parameters"]["to"]["temperature"] == 0.5


def test_aliases_render_and_optimistic_locking(api):
    api("POST", "/prompts/faq/versions", {"content": TEXT_CONTENT})
    api("POST", "/prompts/faq/versions", {"content": {**TEXT_CONTENT, "template": "Q: {question} C: {context}"}})
    status, alias = api("PUT", "/prompts/faq/aliases/prod", {"targets": [{"version": 1}], "expected_revision": 0})
    assert status == 200 and alias["revision"] == 1
    status, alias = api("PUT", "/prompts/faq/aliases/prod", {"targets": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}], "expected_revision": 1})
    assert status == 200 and alias["revision"] == 2
    status, conflict = api("PUT", "/prompts/faq/aliases/prod", {"targets": [{"version": 2}], "expected_revision": 1})
    assert status == 409 and conflict["error"] == "AliasConflict" and conflict["current_revision"] == 2

    status, got = api("GET", "/prompts/faq/aliases/prod")
    assert status == 200 and [v["version"] for v in got["versions"]] == [1, 2]
    status, rendered = api("POST", "/prompts/faq/render", {"variables": {"question": "a", "context": "b"}, "version": 2})
    assert status == 200 and rendered["text"] == "Q: a C: b" and rendered["version"] == 2
    status, rendered = api("POST", "/prompts/faq/render", {"variables": {"question": "a", "context": "b"}})
    assert status == 200 and rendered["alias"] == "prod" and rendered["version"] in (1, 2)
    status, info = api("GET", "/prompts/faq")
    assert status == 200 and [a["alias"] for a in info["aliases"]] == ["prod"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "needle"),
    [
        ("POST", "/prompts/faq/render", {"variables": {"question": "a", "extra": 1}, "version": 1}, 400, "missing variable(s): context"),
        ("POST", "/prompts/faq/render", {"variables": {"question": "a", "extra": 1}, "version": 1}, 400, "unexpected variable(s): extra"),
        ("POST", "/prompts/faq/render", {"variables": {}, "version": 1, "alias": "prod"}, 400, "either version or alias"),
        ("POST", "/prompts/faq/render", {"variables": {}, "alias": "canary"}, 404, "no alias 'canary'"),
        ("POST", "/prompts/faq/versions", {"content": {**TEXT_CONTENT, "technique": "magic"}}, 400, "content.technique: got 'magic'"),
        ("POST", "/prompts/faq/versions", {"content": {**TEXT_CONTENT, "template": "{nope}"}}, 400, "undeclared variable(s): nope"),
        ("POST", "/prompts/faq/versions", {"content": {**TEXT_CONTENT, "template": "{question}{context}" + "x" * 1_000_001}}, 413, "limit is 1000000 bytes"),
        ("POST", "/prompts/faq/versions", {"contents": {}}, 400, "contents: unknown field"),
        ("PUT", "/prompts/faq/aliases/prod", {"targets": [{"version": 1, "weight": 70}, {"version": 2, "weight": 20}], "expected_revision": 0}, 400, "weights must sum to 100, got 90"),
        ("PUT", "/prompts/faq/aliases/prod", {"targets": [{"version": 5}], "expected_revision": 0}, 400, "has no version 5"),
        ("PUT", "/prompts/faq/aliases/latest", {"targets": [{"version": 1}], "expected_revision": 0}, 400, "reserved"),
        ("PUT", "/prompts/faq/aliases/prod", {"targets": [{"version": 1}]}, 400, "expected_revision: Field required"),
        ("GET", "/prompts/faq/versions/abc", None, 400, "version: must be a positive integer"),
        ("GET", "/prompts/faq/versions/9", None, 404, "has no version 9"),
        ("GET", "/prompts/faq/diff", None, 400, "both 'from' and 'to'"),
        ("GET", "/prompts/NOT_VALID", None, 400, "prompt_id: must be"),
        ("DELETE", "/prompts/faq", None, 404, "no route DELETE"),
    ],
)
def test_bad_requests_get_a_clear_4xx(api, method, path, body, status, needle):
    api("POST", "/prompts/faq/versions", {"content": TEXT_CONTENT})
    api("POST", "/prompts/faq/versions", {"content": TEXT_CONTENT})
    got_status, got = api(method, path, body)
    assert got_status == status, got
    assert needle in got["message"], got["message"]


def test_malformed_json_body_is_a_400(api):
    status, body = api("POST", "/prompts/faq/versions", raw_body="{not json")
    assert status == 400 and body["message"].startswith("body: not valid JSON")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)
# Mostly valid-looking values, so the fuzzing reaches the validation deep inside each route.
prompt_ids = st.one_of(st.sampled_from(["faq", "faq", "other", "Bad_ID", "a" * 200, "%2e%2e"]), st.text(min_size=1, max_size=12))
versions = st.one_of(st.sampled_from(["1", "2", "3", "0", "-1", "99999999999", "1.5", "x"]), st.text(min_size=1, max_size=6))
alias_names = st.one_of(st.sampled_from(["prod", "canary", "latest", "Prod", "-x"]), st.text(min_size=1, max_size=8))
segment_safe = lambda strategy: strategy.filter(lambda s: "/" not in s and s.strip() == s and s not in (".", ".."))  # noqa: E731
routes = st.one_of(
    st.just(("GET", "/prompts")),
    st.tuples(st.just("GET"), st.builds("/prompts/{}".format, segment_safe(prompt_ids))),
    st.tuples(st.sampled_from(["GET", "POST"]), st.builds("/prompts/{}/versions".format, segment_safe(prompt_ids))),
    st.tuples(st.just("GET"), st.builds("/prompts/{}/versions/{}".format, segment_safe(prompt_ids), segment_safe(versions))),
    st.tuples(st.sampled_from(["GET", "PUT"]), st.builds("/prompts/{}/aliases/{}".format, segment_safe(prompt_ids), segment_safe(alias_names))),
    st.tuples(st.just("GET"), st.builds("/prompts/{}/diff".format, segment_safe(prompt_ids))),
    st.tuples(st.just("POST"), st.builds("/prompts/{}/render".format, segment_safe(prompt_ids))),
    st.tuples(st.sampled_from(["DELETE", "PATCH"]), st.text(max_size=20).map(lambda s: "/" + s)),
)
variables = st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(["question", "context", "other"]), st.one_of(st.text(max_size=10), json_values), max_size=3),
)
contents = st.one_of(
    json_values,
    st.just(TEXT_CONTENT),
    st.builds(lambda extra: {**TEXT_CONTENT, **extra}, st.dictionaries(
        st.sampled_from(["template", "variables", "technique", "kind", "examples", "example_template", "prefix", "messages", "model_parameters"]),
        json_values | st.text(max_size=30),
        max_size=3,
    )),
)
targets = st.one_of(json_values, st.lists(
    st.fixed_dictionaries({}, optional={"version": st.one_of(st.integers(-1, 4), json_values), "weight": st.one_of(st.integers(-10, 110), json_values)}),
    max_size=3,
))
bodies = st.one_of(
    st.none(),
    json_values,
    st.fixed_dictionaries({}, optional={
        "content": contents,
        "targets": targets,
        "expected_revision": st.one_of(st.integers(-1, 3), json_values),
        "variables": variables,
        "version": st.one_of(st.integers(-1, 4), json_values),
        "alias": st.one_of(alias_names, json_values),
        "only_if_changed": json_values,
        "change_note": json_values,
    }),
)
queries = st.one_of(st.none(), st.dictionaries(st.sampled_from(["limit", "next_token", "before", "from", "to"]), st.one_of(versions, prompt_ids), max_size=3))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(route=routes, body=bodies, query=queries)
def test_no_input_makes_the_handler_fail(api, route, body, query):
    # Two versions and an alias exist, so requests can succeed as well as fail.
    api("POST", "/prompts/faq/versions", {"content": TEXT_CONTENT, "only_if_changed": True})
    if api("GET", "/prompts/faq")[1]["latest_version"] < 2:
        api("POST", "/prompts/faq/versions", {"content": {**TEXT_CONTENT, "template": "{question}|{context}"}})
        api("PUT", "/prompts/faq/aliases/prod", {"targets": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}], "expected_revision": 0})
    method, path = route
    status, payload = api(method, path, body, query)
    assert status in (200, 201, 400, 404, 409, 413), payload
    assert isinstance(payload, dict)
    if status >= 400:
        assert payload["error"] and payload["message"]


@given(token=st.one_of(st.text(max_size=40), st.just("cDE6bm9wZQ"), st.just("zzz"), st.just("cDE6")))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_bogus_next_token_is_a_400_not_an_empty_page(api, token):
    api("POST", "/prompts/alpha/versions", {"content": TEXT_CONTENT})
    status, body = api("GET", "/prompts", query={"next_token": token, "limit": "1"})
    assert status == 400, body
    assert body["problems"][0]["field"] == "next_token"


def test_next_tokens_walk_every_prompt_once(api):
    for pid in ("c", "a", "b"):
        api("POST", f"/prompts/{pid}/versions", {"content": TEXT_CONTENT})
    seen, token = [], None
    while True:
        status, body = api("GET", "/prompts", query={"limit": "1", **({"next_token": token} if token else {})})
        assert status == 200, body
        seen += [p["prompt_id"] for p in body["prompts"]]
        token = body["next_token"]
        if token is None:
            break
    assert seen == ["a", "b", "c"]
