"""The ``data_prep`` config section: defaults, and errors that name the field and allowed values."""

from __future__ import annotations

import botocore.session
import pytest

from llmops.config import PII_ENTITY_TYPES, ConfigError
from tests.helpers import config_with


def test_defaults_and_endpoints() -> None:
    env = config_with("dev").get("dev")
    assert env.data_prep.textract_features == ("LAYOUT", "TABLES")
    assert env.data_prep.pii_entity_types == ("ALL",) and env.data_prep.mask == "[{type}]"
    # dev's data-prep functions run outside the VPC (cost profile); where they run inside, the endpoints exist
    assert env.network.functions_in_vpc == "when-needed"
    prod = config_with("prod").get("prod")
    assert {"textract", "comprehend", "step_functions", "sns", "eventbridge"} <= set(prod.network.interface_endpoints)


def test_pii_types_match_the_comprehend_api_model() -> None:
    model = botocore.session.get_session().get_service_model("comprehend")
    assert set(PII_ENTITY_TYPES) == set(model.shape_for("PiiEntityType").enum)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pii_entity_types": ["NAME", "SHOE_SIZE"]}, r"environments\.dev\.data_prep\.pii_entity_types: unknown PII entity type\(s\) \['SHOE_SIZE'\]; allowed: ALL"),
        ({"textract_features": ["QUERIES"]}, r"data_prep\.textract_features\.0: got 'QUERIES'; allowed: 'LAYOUT', 'TABLES' or 'FORMS'"),
        ({"custom_classifier_endpoint_arn": "arn:aws:sagemaker:us-east-1:111111111111:endpoint/x"}, r"data_prep\.custom_classifier_endpoint_arn: must be a Comprehend"),
        ({"pii_min_score": 2}, r"data_prep\.pii_min_score"),
        ({"workteam": {"enabeld": True}}, r"data_prep\.workteam\.enabeld: unknown field"),
    ],
)
def test_bad_values_name_the_field(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_with("dev", {"data_prep": overrides})
