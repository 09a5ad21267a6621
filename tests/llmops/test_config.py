"""Config validation: the repo's file loads, and each bad value names its field."""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops.app import selected_environments
from llmops.config import ConfigError, load_config, parse_config
from tests.helpers import raw_config


def with_env(env: str, **fields):
    raw = raw_config()
    raw["environments"][env] = {**(raw["environments"][env] or {}), **fields}
    return raw


def test_repo_config_has_three_environments():
    config = load_config()
    assert list(config.environments) == ["dev", "staging", "prod"]
    dev = config.get("dev")
    assert dev.account is None and dev.vector_store.backend == "aurora-pgvector"
    prod = config.get("prod")
    assert prod.removal_policy == "retain" and prod.network.max_azs == 3
    # defaults are deep-merged: prod overrides inference but keeps the default training profile
    assert prod.instances.inference.count == 2 and prod.instances.training.type == "ml.g5.2xlarge"


@pytest.mark.parametrize(
    ("env", "fields", "expected"),
    [
        ("prod", {"vector_store": {"backend": "pinecone"}}, "environments.prod.vector_store.backend: got 'pinecone'; allowed: 'opensearch-serverless', 'aurora-pgvector'"),
        ("dev", {"removal_policy": "keep"}, "environments.dev.removal_policy: got 'keep'; allowed: 'destroy', 'retain' or 'snapshot'"),
        ("dev", {"instances": {"training": {"type": "ml.x9.huge"}}}, "environments.dev.instances.training: type 'ml.x9.huge' is not a supported instance type; allowed families: ml.g5.*"),
        ("dev", {"instances": {"inference": {"type": "ml.g5.xlarge", "count": 0}}}, "environments.dev.instances.inference.count"),
        ("staging", {"account": "12345"}, "environments.staging.account: must be a 12-digit AWS account id"),
        ("staging", {"account": None}, "account is required outside dev"),
        ("dev", {"region": "mars-north-1x"}, "environments.dev.region: not an AWS region name"),
        ("dev", {"name_prefix": "LLM_Ops"}, "environments.dev.name_prefix: must be 3-20 characters"),
        ("dev", {"colour": "blue"}, "environments.dev.colour: unknown field (check the spelling)"),
        ("dev", {"network": {"cidr": "10.0.0.0/8"}}, "environments.dev.network.cidr: prefix length must be /16 to /24"),
        ("dev", {"network": {"interface_endpoints": ["sagemaker_api", "teleport"]}}, "unknown endpoint(s) ['teleport']"),
        ("dev", {"network": {"existing_vpc_id": "vpc-0123456789abcdef0"}}, "network.existing_vpc_id needs account and region set"),
        ("prod", {"removal_policy": "destroy"}, "removal_policy must be 'retain' in prod"),
        ("dev", {"log_retention_days": 42}, "environments.dev.log_retention_days: got 42; allowed:"),
        ("dev", {"capabilities": {"rag": "maybe"}}, "environments.dev.capabilities.rag"),
    ],
)
def test_bad_value_names_field_and_allowed_values(env, fields, expected):
    raw = raw_config()
    merged = copy.deepcopy(raw["environments"][env] or {})
    merged.update(fields)
    raw["environments"][env] = merged
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert expected in str(err.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], "top level must be a mapping"),
        ({"project": "llmops", "environments": {}}, "environments: must map at least one environment"),
        ({"project": "LLM Ops", "environments": {"dev": {}}}, "project: must be a lower-case name"),
        ({"project": "llmops", "environments": {"dev": {}}, "extra": 1}, "unknown top-level field(s) ['extra']"),
        ({"project": "llmops", "environments": {"Dev!": {}}}, "environments.Dev!: environment names"),
    ],
)
def test_bad_document_shape(raw, expected):
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert expected in str(err.value)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("project: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_environment_selection():
    config = load_config()
    assert selected_environments(config, None) == ["dev", "staging", "prod"]
    assert selected_environments(config, "all") == ["dev", "staging", "prod"]
    assert selected_environments(config, "dev") == ["dev"]
    assert selected_environments(config, "prod, dev") == ["prod", "dev"]
    with pytest.raises(ConfigError, match=r"unknown environment\(s\) \['qa'\]; allowed: dev, staging, prod or all"):
        selected_environments(config, "qa")


def test_a_team_can_add_an_environment():
    raw = raw_config()
    raw["environments"]["qa"] = {"account": "333333333333", "name_prefix": "llmops-qa"}
    config = parse_config(raw)
    assert config.get("qa").region == "us-east-1"


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["removal_policy", "name_prefix", "account", "region", "log_retention_days", "vector_store", "instances"]),
                       st.one_of(st.none(), st.integers(), st.text(max_size=12), st.dictionaries(st.text(max_size=8), st.integers(), max_size=2)),
                       max_size=3))
def test_any_input_is_accepted_or_rejected_with_config_error(fields):
    # No value may crash the loader with anything but a ConfigError naming environments.dev.
    raw = with_env("dev", **fields)
    try:
        parse_config(raw)
    except ConfigError as err:
        assert "environments.dev" in str(err)


def test_yaml_file_round_trip(tmp_path):
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(raw_config()))
    assert load_config(path).get("staging").account == "111111111111"
