"""functions.reserved_concurrency: defaults, per-function values, and bad input naming the field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops.config import FUNCTION_NAMES, ConfigError, parse_config
from tests.helpers import raw_config


def parse(functions):
    raw = raw_config()
    raw["environments"]["dev"] = {**(raw["environments"]["dev"] or {}), "functions": functions}
    return parse_config(raw).get("dev").functions


def test_defaults_and_overrides():
    functions = parse_config(raw_config()).get("dev").functions
    assert functions.reserved_for("data_prep_validate") == 10
    assert functions.reserved_for("rag_query") == 50
    custom = parse({"reserved_concurrency": {"default": 3, "rag_query": 7}})
    assert custom.reserved_for("rag_query") == 7 and custom.reserved_for("prompt_catalog_api") == 3


def test_function_names_are_the_lambda_folders():
    assert "rag_query" in FUNCTION_NAMES and "runtime" not in FUNCTION_NAMES


@pytest.mark.parametrize(("value", "message"), [
    ({"rag_qurey": 5}, "environments.dev.functions.reserved_concurrency: unknown function 'rag_qurey'; allowed: default, data_prep_custom"),
    ({"rag_query": 0}, "environments.dev.functions.reserved_concurrency: rag_query: reserved concurrency must be an integer 1-1000, got 0"),
    ({"default": 1001}, "must be an integer 1-1000, got 1001"),
])
def test_bad_values_name_the_field(value, message):
    with pytest.raises(ConfigError) as err:
        parse({"reserved_concurrency": value})
    assert message in str(err.value)


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.integers(max_value=0), st.integers(min_value=1001)))
def test_out_of_range_limits_are_refused(limit):
    with pytest.raises(ConfigError, match=r"functions\.reserved_concurrency: default: reserved concurrency must be an integer 1-1000"):
        parse({"reserved_concurrency": {"default": limit}})
