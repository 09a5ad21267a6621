"""Model import against moto S3 with a real local model folder: manifest, idempotence, resume."""

from __future__ import annotations

import json
import struct

import boto3
import pytest
from moto import mock_aws

from lambdas.runtime.inference.model_import import (
    MANIFEST, ModelImportError, import_folder, model_info, prefix_for, safetensors_parameters, sha256_of)

BUCKET = "llmops-dev-artifacts-123456789012-eu-west-1"


def write_safetensors(path, tensors):
    """A valid .safetensors file: little-endian header length, JSON header, then the raw bytes."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, (dtype, shape) in tensors.items():
        size = 2
        for d in shape:
            size *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "torch_dtype": "bfloat16", "hidden_size": 8}))
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"vocab": {"a": 0}}}))
    write_safetensors(folder / "model-00001-of-00002.safetensors", {"embed": ("BF16", [16, 8]), "norm": ("BF16", [8])})
    write_safetensors(folder / "model-00002-of-00002.safetensors", {"lm_head": ("BF16", [16, 8])})
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return folder


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


def test_parameters_and_dtype_from_headers_and_config(model_dir):
    assert safetensors_parameters(model_dir / "model-00002-of-00002.safetensors") == (128, "BF16")
    assert model_info(model_dir) == (16 * 8 + 8 + 16 * 8, "bfloat16")


def test_import_writes_files_and_manifest(s3, model_dir):
    seen = []
    manifest = import_folder(s3, BUCKET, "acme/tiny", "main", model_dir, progress=seen.append)
    prefix = "base-models/acme/tiny/main/"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"])
    assert keys == [prefix + k for k in sorted([MANIFEST, "config.json", "model-00001-of-00002.safetensors",
                                                "model-00002-of-00002.safetensors", "tokenizer.json"])]
    body = json.loads(s3.get_object(Bucket=BUCKET, Key=prefix + MANIFEST)["Body"].read())
    assert body["parameters"] == 264 and body["dtype"] == "bfloat16" and body["revision"] == "main"
    by_path = {f["path"]: f for f in body["files"]}
    assert by_path["config.json"]["sha256"] == sha256_of(model_dir / "config.json")
    assert by_path["tokenizer.json"]["size"] == (model_dir / "tokenizer.json").stat().st_size
    assert ".git/HEAD" not in by_path
    assert sum(seen) == sum(f["size"] for f in body["files"])  # the progress bar reaches 100 %
    head = s3.head_object(Bucket=BUCKET, Key=prefix + "config.json")
    assert head["Metadata"]["sha256"] == by_path["config.json"]["sha256"]
    assert len(manifest.uploaded) == 4


def test_rerun_is_idempotent_and_a_changed_file_is_uploaded_again(s3, model_dir):
    import_folder(s3, BUCKET, "acme/tiny", "main", model_dir)
    again = import_folder(s3, BUCKET, "acme/tiny", "main", model_dir)
    assert again.uploaded == [] and len(again.skipped) == 4
    (model_dir / "tokenizer.json").write_text(json.dumps({"version": "1.1"}))
    changed = import_folder(s3, BUCKET, "acme/tiny", "main", model_dir)
    assert changed.uploaded == ["tokenizer.json"]


def test_interrupted_import_resumes_at_the_missing_files(s3, model_dir):
    import_folder(s3, BUCKET, "acme/tiny", "main", model_dir)
    prefix = "base-models/acme/tiny/main/"
    s3.delete_object(Bucket=BUCKET, Key=prefix + "model-00002-of-00002.safetensors")
    s3.delete_object(Bucket=BUCKET, Key=prefix + MANIFEST)  # a run cut short never wrote its manifest
    resumed = import_folder(s3, BUCKET, "acme/tiny", "main", model_dir)
    assert resumed.uploaded == ["model-00002-of-00002.safetensors"]
    assert s3.head_object(Bucket=BUCKET, Key=prefix + MANIFEST)


@pytest.mark.parametrize("model_id, revision, words", [
    ("../etc", "main", "model id"), ("acme/tiny", "../x", "revision"), ("a/b/c", "main", "model id")])
def test_bad_ids_are_refused(model_id, revision, words):
    with pytest.raises(ModelImportError, match=words):
        prefix_for(model_id, revision)


def test_a_folder_without_config_json_is_refused(s3, tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelImportError, match="config.json"):
        import_folder(s3, BUCKET, "acme/tiny", "main", tmp_path)


def test_cli_imports_a_local_folder(s3, model_dir, capsys):
    from llmops.cli import main

    assert main(["models", "import", "acme/tiny", "--from-folder", str(model_dir), "--bucket", BUCKET,
                 "--region", "eu-west-1"]) == 0
    assert "4 uploaded, 0 unchanged; 264 parameters, dtype bfloat16" in capsys.readouterr().out
    assert main(["models", "import", "acme/tiny", "--from-folder", str(model_dir), "--bucket", BUCKET,
                 "--region", "eu-west-1"]) == 0
    assert "0 uploaded, 4 unchanged" in capsys.readouterr().out
    assert main(["models", "import", "bad id", "--from-folder", str(model_dir), "--bucket", BUCKET]) == 2
