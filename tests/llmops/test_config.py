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
        ("prod", {"removal_policy": "destroy"}, "removal_policy must be 'retain' in a production environment (production: true)"),
        # strict types: YAML strings are not bools or numbers
        ("dev", {"capabilities": {"rag": "yes"}}, "environments.dev.capabilities.rag: Input should be a valid boolean"),
        ("dev", {"network": {"max_azs": "3"}}, "environments.dev.network.max_azs: Input should be a valid integer"),
        ("dev", {"fine_tuning": {"epochs": "3"}}, "environments.dev.fine_tuning.epochs: Input should be a valid integer"),
        ("dev", {"production": "true"}, "environments.dev.production: Input should be a valid boolean"),
        # an unquoted account id is an int in YAML: the message still says to quote it
        ("staging", {"account": 111111111111}, "environments.staging.account: must be a 12-digit AWS account id as a quoted string (quote it in YAML), got 111111111111"),
        ("dev", {"fine_tuning": {"reader_accounts": [333333333333]}}, "environments.dev.fine_tuning.reader_accounts: must be 12-digit AWS account ids as quoted strings (quote them in YAML), got 333333333333"),
        ("dev", {"region": "xx-fake-9"}, "environments.dev: region: 'xx-fake-9' is not a known AWS region (llmops/regions.py); check the spelling, or set allow_unlisted_region: true"),
        ("dev", {"region": "us-east-l"}, "environments.dev.region: not an AWS region name"),
        ("dev", {"network": {"cidr": "10.40.0.0/21"}}, "environments.dev.network: cidr 10.40.0.0/21 (/21) cannot hold a /20 subnet; use /20 or larger"),
        ("prod", {"network": {"cidr": "10.40.0.0/19", "max_azs": 3}}, "environments.prod.network: cidr 10.40.0.0/19 holds 2 /20 subnet(s) but max_azs 3 needs 3; use a /18 or larger, or fewer AZs"),
        ("dev", {"fine_tuning": {"use_cases": {"assistant": {"dataset": "support.v2"}}}}, "environments.dev.fine_tuning.use_cases.assistant.dataset: String should match pattern"),
        ("dev", {"fine_tuning": {"use_cases": {"assistant": {"dataset": "support_v2"}}}}, "environments.dev.fine_tuning.use_cases.assistant.dataset: String should match pattern"),
        ("dev", {"fine_tuning": {"strategy": "qlora", "instance_count": 2}}, "environments.dev.fine_tuning: strategy: qlora trains on one instance"),
        ("staging", {"example": False}, "environments.staging: account (111111111111): placeholder account id(s) would receive grants; replace them with real account ids, or mark the environment 'example: true'"),
        ("dev", {"example": False}, "environments.dev: fine_tuning.reader_accounts (111111111111), fine_tuning.reader_accounts (222222222222): placeholder account id(s)"),
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


def test_non_utf8_file_names_the_byte_and_line(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("project: llmops\n# owner: J\u00fcrgen\n".encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert str(err.value) == f"{bad}: not UTF-8 text (byte 0xfc at line 2); save the file as UTF-8"


def test_duplicate_key_names_the_key_and_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("project: llmops\nenvironments:\n  dev:\n    name_prefix: a-dev\n    log_retention_days: 30\n"
                    "    name_prefix: b-dev\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}: line 6: duplicate key 'name_prefix' (first at line 4); "
                              "a repeated key would silently override the first")


def test_unlisted_region_needs_the_escape_hatch():
    config = parse_config(with_env("dev", region="xx-fake-9", allow_unlisted_region=True))
    assert config.get("dev").region == "xx-fake-9"


def test_retention_follows_production_not_the_name():
    raw = raw_config()
    raw["environments"]["live"] = {"account": "333333333333", "name_prefix": "llmops-live", "production": True}
    with pytest.raises(ConfigError, match=r"environments.live: removal_policy must be 'retain' in a production environment"):
        parse_config(raw)
    raw["environments"]["live"]["removal_policy"] = "retain"
    raw["environments"]["prod"]["production"] = False
    raw["environments"]["prod"]["removal_policy"] = "destroy"
    config = parse_config(raw)
    assert config.get("live").is_prod and not config.get("prod").is_prod


def test_dataset_pattern_is_the_one_data_prep_uses():
    from lambdas.runtime.data_prep.datasets import _NAME
    from llmops.config import DATASET_NAME_PATTERN

    assert DATASET_NAME_PATTERN == f"^{_NAME.pattern}$"


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["yes", "no", "on", "true", "1", "0"]))
def test_strings_are_never_booleans(word):
    with pytest.raises(ConfigError, match="environments.dev.rag.aoss.public_access: Input should be a valid boolean"):
        parse_config(with_env("dev", rag={"aoss": {"public_access": word}}))


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=8, max_value=24), st.integers(min_value=1, max_value=6))
def test_cidr_accepted_exactly_when_the_subnets_fit(prefix, azs):
    raw = with_env("dev", network={"cidr": f"10.0.0.0/{prefix}", "max_azs": azs})
    fits = 16 <= prefix <= 20 and 2 ** (20 - prefix) >= azs
    if fits:
        assert parse_config(raw).get("dev").network.max_azs == azs
    else:
        with pytest.raises(ConfigError, match=r"environments.dev.network"):
            parse_config(raw)


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
