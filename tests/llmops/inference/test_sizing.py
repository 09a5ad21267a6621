"""Sizing rules, table-driven, and container settings validation."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from llmops.inference import KNOWN_MODELS, SETTINGS, check_sizing, types_that_fit, validate_settings
from llmops.instance_types import INSTANCE_TYPES

T = INSTANCE_TYPES


@pytest.mark.parametrize("model, dtype, itype, tp, ok, words", [
    ("meta-llama/Llama-3.1-70B-Instruct", "fp16", "ml.g5.2xlarge", 1, False, ["131.5 GiB", "21.6 GiB", "a type that fits"]),
    ("meta-llama/Llama-3.1-8B-Instruct", "bf16", "ml.g5.2xlarge", 1, True, []),
    ("meta-llama/Llama-3.1-8B-Instruct", "bf16", "ml.g5.12xlarge", 8, False, ["tensor_parallel_degree", "8", "1, 2, 4"]),
    ("meta-llama/Llama-3.1-70B-Instruct", "bf16", "ml.g5.48xlarge", 8, True, []),
    ("meta-llama/Llama-3.1-70B-Instruct", "bf16", "ml.p4d.24xlarge", 8, True, []),
    ("meta-llama/Llama-3.1-70B-Instruct", "awq", "ml.g6e.xlarge", 1, True, []),
    ("mistralai/Mistral-7B-Instruct-v0.3", "bf16", "ml.inf2.xlarge", 2, True, []),
    ("mistralai/Mistral-7B-Instruct-v0.3", "bf16", "ml.inf2.xlarge", 3, False, ["NeuronCores", "1, 2"]),
    ("meta-llama/Llama-3.2-1B-Instruct", "bf16", "ml.m5.xlarge", 1, False, ["no GPU"]),
])
def test_sizing_table(model, dtype, itype, tp, ok, words):
    params = KNOWN_MODELS[model].params_billion
    if ok:
        fit = check_sizing(where="inference.llm", instance=T[itype], params_billion=params, dtype=dtype, tp=tp)
        assert fit.needed_gib <= fit.available_gib
        return
    with pytest.raises(ValueError) as err:
        check_sizing(where="inference.llm", instance=T[itype], params_billion=params, dtype=dtype, tp=tp)
    assert all(w in str(err.value) for w in words), str(err.value)
    assert "inference.llm" in str(err.value)


def test_suggested_type_really_fits():
    name = types_that_fit(70.6, "fp16", "nvidia")[0]
    row = T[name]
    check_sizing(where="x", instance=row, params_billion=70.6, dtype="fp16", tp=row.accelerator_count)


def test_unknown_setting_names_the_allowed_names():
    with pytest.raises(ValueError) as err:
        validate_settings("djl-lmi", {"MAX_LENGTH": 4096})
    assert "MAX_LENGTH" in str(err.value) and "OPTION_MAX_MODEL_LEN" in str(err.value)


def test_values_are_rendered_as_strings():
    assert validate_settings("tgi", {"MAX_INPUT_TOKENS": 1024, "MESSAGES_API_ENABLED": True, "DTYPE": "bfloat16"}) == {
        "DTYPE": "bfloat16", "MAX_INPUT_TOKENS": "1024", "MESSAGES_API_ENABLED": "true"}


@given(st.sampled_from(sorted(SETTINGS)), st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=30))
def test_any_name_outside_the_family_is_refused(family, name):
    if name in SETTINGS[family]:
        assert validate_settings(family, {name: 1}) == {name: "1"}
    else:
        with pytest.raises(ValueError, match="allowed"):
            validate_settings(family, {name: 1})


@given(st.sampled_from([n for n, r in sorted(T.items()) if r.accelerator != "none" and not r.family.startswith("trn")]),
       st.integers(min_value=1, max_value=32), st.sampled_from(sorted(KNOWN_MODELS)),
       st.sampled_from(["bf16", "fp8", "awq"]))
def test_sizing_accepts_exactly_what_divides_and_fits(name, tp, model, dtype):
    row, params = T[name], KNOWN_MODELS[model].params_billion
    divides = row.accelerator_count % tp == 0
    fits = params * 1e9 * {"bf16": 2, "fp8": 1, "awq": 0.5}[dtype] / 1024**3 * 1.0 \
        + max(0.2 * params * 1e9 * {"bf16": 2, "fp8": 1, "awq": 0.5}[dtype] / 1024**3, tp) <= row.accelerator_memory_gib * tp * 0.9
    if divides and fits:
        check_sizing(where="w", instance=row, params_billion=params, dtype=dtype, tp=tp)
    else:
        with pytest.raises(ValueError, match="tensor_parallel_degree" if not divides else "GiB"):
            check_sizing(where="w", instance=row, params_billion=params, dtype=dtype, tp=tp)
