"""The prepare step: validation with counts, deterministic split, clear failures."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from pipelines.steps import prepare as prep
from pipelines.steps._io import StepFailed, read_jsonl
from pipelines.steps.dataset import validate_record
from tests.pipelines.conftest import write_dataset

RECORDS = [{"instruction": f"question {i}", "response": f"answer {i}"} for i in range(50)]


def test_valid_version_is_split_and_templated(tmp_path):
    folder = write_dataset(tmp_path, RECORDS)
    report = prep.prepare(str(folder), tmp_path / "out", seed=7)
    assert report["records"] == report["accepted"] == 50
    assert report["splits"] == {"test": 5, "validation": 5, "train": 40}
    rows = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert rows[0]["prompt"].startswith("### Instruction:\n") and rows[0]["prompt"].endswith("### Response:\n")
    assert rows[0]["completion"] == rows[0]["record"]["response"]
    stats = report["token_lengths"]["train"]
    assert stats["count"] == 40 and stats["min"] <= stats["p50"] <= stats["p95"] <= stats["max"]
    # Every accepted record lands in exactly one split.
    seen = [json.dumps(r["record"], sort_keys=True) for name in ("train", "validation", "test") for r in read_jsonl(tmp_path / "out" / f"{name}.jsonl")]
    assert sorted(seen) == sorted(json.dumps(r, sort_keys=True) for r in RECORDS)


def test_split_is_deterministic_for_a_seed_and_changes_with_it(tmp_path):
    folder = write_dataset(tmp_path, RECORDS)
    a = prep.split_records(RECORDS, 42, 0.1, 0.1)
    b = prep.split_records(list(reversed(RECORDS)), 42, 0.1, 0.1)  # file order does not matter
    c = prep.split_records(RECORDS, 43, 0.1, 0.1)
    assert a == b
    assert a["test"] != c["test"]
    prep.prepare(str(folder), tmp_path / "o1", seed=42)
    prep.prepare(str(folder), tmp_path / "o2", seed=42)
    for name in ("train.jsonl", "validation.jsonl", "test.jsonl", "prepare_report.json"):
        assert (tmp_path / "o1" / name).read_bytes() == (tmp_path / "o2" / name).read_bytes()


def test_malformed_and_empty_records_are_rejected_with_counts_not_dropped(tmp_path):
    lines = [json.dumps(r) for r in RECORDS[:20]] + [
        "",  # empty line
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"instruction": "  ", "response": "x"}),
        json.dumps({"instruction": "q"}),
    ]
    folder = write_dataset(tmp_path, [], raw_lines=lines)
    report = prep.prepare(str(folder), tmp_path / "out", max_rejected_fraction=0.5)
    assert report["accepted"] == 20 and report["rejected"] == 5
    assert report["rejected_by_reason"] == {
        "empty_line": 1, "invalid_json": 1, "missing_instruction": 1, "missing_response": 1, "not_an_object": 1,
    }
    rejected = read_jsonl(tmp_path / "out" / "rejected.jsonl")
    assert [r["line"] for r in rejected] == [21, 22, 23, 24, 25]
    assert rejected[1]["raw"] == "{not json"


def test_too_many_rejections_fail_the_step(tmp_path):
    lines = [json.dumps(r) for r in RECORDS[:5]] + ["{bad"] * 5
    folder = write_dataset(tmp_path, [], raw_lines=lines)
    with pytest.raises(StepFailed, match=r"5 of 10 records rejected .*invalid_json"):
        prep.prepare(str(folder), tmp_path / "out", max_rejected_fraction=0.1)


def test_text_label_records_need_text_and_label(tmp_path):
    records = [{"text": f"great {i}", "label": "positive"} for i in range(9)] + [{"text": "x", "label": ""}]
    folder = write_dataset(tmp_path, records, fmt="text-label")
    report = prep.prepare(str(folder), tmp_path / "out", max_rejected_fraction=0.2)
    assert report["rejected_by_reason"] == {"missing_label": 1}
    row = read_jsonl(tmp_path / "out" / "train.jsonl")[0]
    assert row["completion"] == "positive" and "### Text:" in row["prompt"]


def test_missing_version_fails_with_a_message_naming_it_and_the_published_versions(tmp_path):
    write_dataset(tmp_path, RECORDS, version=1)
    write_dataset(tmp_path, RECORDS, version=2)
    with pytest.raises(StepFailed, match=r"dataset 'toy' version 7 does not exist.*published versions: v1, v2"):
        prep.prepare(str(tmp_path / "datasets" / "toy" / "v7"), tmp_path / "out")


def test_empty_version_fails_with_a_clear_message(tmp_path):
    folder = write_dataset(tmp_path, [], raw_lines=[])
    with pytest.raises(StepFailed, match=r"dataset 'toy' version 1: dataset version is empty"):
        prep.prepare(str(folder), tmp_path / "out")


def test_tampered_data_fails_the_checksum(tmp_path):
    folder = write_dataset(tmp_path, RECORDS)
    (folder / "data.jsonl").write_text(json.dumps(RECORDS[0]) + "\n")
    with pytest.raises(StepFailed, match="does not match the manifest"):
        prep.prepare(str(folder), tmp_path / "out")


def test_record_count_mismatch_fails(tmp_path):
    folder = write_dataset(tmp_path, RECORDS, record_count=60)
    with pytest.raises(StepFailed, match="manifest says 60 records, data.jsonl has 50 lines"):
        prep.prepare(str(folder), tmp_path / "out")


def test_main_turns_a_failure_into_exit_code_2_and_the_failure_message(tmp_path, monkeypatch, capsys):
    from pipelines.steps import _io

    message_file = tmp_path / "message"
    monkeypatch.setattr(_io, "FAILURE_FILES", (str(message_file),))
    monkeypatch.setattr(_io.report_failure, "__defaults__", ((str(message_file),),))
    code = _io.run_step(prep.main, ["--dataset-uri", str(tmp_path / "datasets" / "nope" / "v1"), "--output-dir", str(tmp_path / "o")])
    assert code == 2
    assert "dataset 'nope' version 1 does not exist" in message_file.read_text()
    assert "Traceback" not in capsys.readouterr().err


def test_manifest_key_from_the_trigger_selects_the_version():
    assert prep.resolve_dataset_uri("s3://data/datasets/toy/v1/", "datasets/toy/v9/manifest.json") == "s3://data/datasets/toy/v9/"
    assert prep.resolve_dataset_uri("s3://data/datasets/toy/v1/", "none") == "s3://data/datasets/toy/v1/"
    with pytest.raises(StepFailed, match="is not datasets/<name>/v<N>/manifest.json"):
        prep.resolve_dataset_uri("s3://data/datasets/toy/v1/", "raw/evil.json")


@mock_aws
def test_reads_a_version_and_the_tokenizer_from_s3(tmp_path, tiny_model_dir):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="data")
    s3.create_bucket(Bucket="artifacts")
    local = write_dataset(tmp_path, RECORDS[:10])
    for name in ("data.jsonl", "manifest.json"):
        s3.upload_file(str(local / name), "data", f"datasets/toy/v1/{name}")
    for path in Path(tiny_model_dir).iterdir():
        s3.upload_file(str(path), "artifacts", f"base-models/tiny/{path.name}")
    tokenizer = prep.load_tokenizer("s3://artifacts/base-models/tiny/", s3)
    report = prep.prepare("s3://data/datasets/toy/v1/", tmp_path / "out", tokenizer=tokenizer, s3_client=s3)
    assert report["token_unit"] == "tokens" and report["accepted"] == 10
    with pytest.raises(StepFailed, match=r"version 2 does not exist.*published versions: v1"):
        prep.prepare("s3://data/datasets/toy/v2/", tmp_path / "out2", s3_client=s3)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=50), st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.integers(), st.text(max_size=10)), max_size=4).map(json.dumps)))
def test_any_line_is_either_accepted_or_rejected_with_a_reason(line):
    for fmt in ("instruction", "text-label"):
        record, reason = validate_record(line, fmt)
        assert (record is None) != (reason is None)


def test_the_base_models_chat_template_is_applied_when_it_has_one(tiny_model_dir):
    from transformers import AutoTokenizer

    from pipelines.steps.dataset import to_prompt

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    assert to_prompt({"instruction": "q", "response": "a"}, "instruction", tokenizer)[0].startswith("### Instruction:")
    tokenizer.chat_template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    prompt, completion = to_prompt({"instruction": "what colour is snow", "input": "winter", "response": "white"}, "instruction", tokenizer)
    assert prompt == "<|user|>what colour is snow\n\nwinter<|assistant|>" and completion == "white"
