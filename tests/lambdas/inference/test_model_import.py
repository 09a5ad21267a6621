"""``llmops models import``: local folder and Hub cache -> base-models/<id>/<revision>/ in (moto) S3."""

from __future__ import annotations

import hashlib
import json
import struct

import boto3
import pytest
from moto import mock_aws

from lambdas.runtime.inference import model_import as mi
from llmops.cli import main

BUCKET = "llmops-dev-artifacts-123456789012-us-east-1"


def write_safetensors(path, tensors: dict[str, tuple[str, list[int]]]) -> None:
    """A real safetensors file: 8-byte little-endian header length, JSON header, then the raw data."""
    sizes = {"F32": 4, "BF16": 2, "F16": 2, "I8": 1}
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + bytes(offset))


@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "tiny-llm"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "torch_dtype": "bfloat16"}))
    (folder / "tokenizer.json").write_text('{"version": "1.0"}')
    write_safetensors(folder / "model.safetensors", {"embed.weight": ("BF16", [32, 8]), "lm_head.weight": ("BF16", [8, 32]),
                                                     "norm.weight": ("F32", [8])})
    (folder / ".cache").mkdir()
    (folder / ".cache" / "lock").write_text("x")  # Hub housekeeping: not uploaded
    return folder


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_folder_import_uploads_files_and_manifest(model_folder, s3):
    result = mi.import_model(str(model_folder), s3=s3, bucket=BUCKET, model_id="acme/tiny-llm", revision="v1")
    prefix = "base-models/acme/tiny-llm/v1/"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"])
    assert keys == [prefix + k for k in ("config.json", "manifest.json", "model.safetensors", "tokenizer.json")]
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=prefix + "manifest.json")["Body"].read())
    assert manifest["parameters"] == 32 * 8 + 8 * 32 + 8
    assert manifest["dtype"] == "bf16"
    files = {f["path"]: f for f in manifest["files"]}
    weights = (model_folder / "model.safetensors").read_bytes()
    assert files["model.safetensors"] == {"path": "model.safetensors", "size": len(weights),
                                          "sha256": hashlib.sha256(weights).hexdigest()}
    head = s3.head_object(Bucket=BUCKET, Key=prefix + "model.safetensors")
    assert head["Metadata"]["sha256"] == hashlib.sha256(weights).hexdigest()
    assert result.s3_uri == f"s3://{BUCKET}/{prefix}"
    assert sorted(result.uploaded) == ["config.json", "model.safetensors", "tokenizer.json"]


def test_second_import_uploads_nothing_and_a_changed_file_only_that(model_folder, s3):
    mi.import_model(str(model_folder), s3=s3, bucket=BUCKET, model_id="acme/tiny-llm", revision="v1")
    again = mi.import_model(str(model_folder), s3=s3, bucket=BUCKET, model_id="acme/tiny-llm", revision="v1")
    assert again.uploaded == [] and len(again.skipped) == 3
    (model_folder / "tokenizer.json").write_text('{"version": "2.0"}')
    third = mi.import_model(str(model_folder), s3=s3, bucket=BUCKET, model_id="acme/tiny-llm", revision="v1")
    assert third.uploaded == ["tokenizer.json"]
    body = s3.get_object(Bucket=BUCKET, Key="base-models/acme/tiny-llm/v1/tokenizer.json")["Body"].read()
    assert body == b'{"version": "2.0"}'


def test_interrupted_copy_resumes_with_the_missing_files(model_folder, s3):
    """A run cut off after one file: the rerun uploads only the rest, then the manifest."""
    digest = mi.sha256_of(model_folder / "config.json")
    s3.upload_file(str(model_folder / "config.json"), BUCKET, "base-models/acme/tiny-llm/v1/config.json",
                   ExtraArgs={"Metadata": {"sha256": digest}})
    result = mi.import_model(str(model_folder), s3=s3, bucket=BUCKET, model_id="acme/tiny-llm", revision="v1")
    assert result.skipped == ["config.json"]
    assert sorted(result.uploaded) == ["model.safetensors", "tokenizer.json"]


def test_hub_import_reads_a_snapshot_from_the_cache(model_folder, s3, tmp_path):
    """The Hub path through huggingface_hub's own cache layout (offline: refs/main -> snapshots/<commit>)."""
    pytest.importorskip("huggingface_hub")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--acme--tiny-llm"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in model_folder.iterdir():
        if f.is_file():
            (snapshot / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    result = mi.import_model("acme/tiny-llm", s3=s3, bucket=BUCKET, cache_dir=str(tmp_path / "hub"), local_files_only=True)
    assert result.commit == commit and result.revision == "main" and result.model_id == "acme/tiny-llm"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key="base-models/acme/tiny-llm/main/manifest.json")["Body"].read())
    assert manifest["commit"] == commit and len(manifest["files"]) == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"source": "no/such/folder/at/all"}, "neither an existing folder nor a Hugging Face repo id"),
    ({"source": "FOLDER"}, "needs --model-id"),
    ({"source": "FOLDER", "model_id": "../escape"}, "model id '../escape'"),
    ({"source": "FOLDER", "model_id": "acme/x", "revision": "a b"}, "revision 'a b'"),
])
def test_bad_input_is_named(model_folder, s3, kwargs, message):
    kwargs = {k: (str(model_folder) if v == "FOLDER" else v) for k, v in kwargs.items()}
    with pytest.raises(mi.ModelImportError, match=message):
        mi.import_model(s3=s3, bucket=BUCKET, **kwargs)


def test_folder_without_config_json_is_refused(tmp_path, s3):
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(mi.ModelImportError, match="no config.json"):
        mi.import_model(str(tmp_path), s3=s3, bucket=BUCKET, model_id="acme/x")


def test_corrupt_safetensors_header_is_refused(model_folder, s3):
    (model_folder / "model.safetensors").write_bytes(struct.pack("<Q", 5) + b"{nope")
    with pytest.raises(mi.ModelImportError, match="unreadable safetensors header"):
        mi.import_model(str(model_folder), s3=s3, bucket=BUCKET, model_id="acme/x")


def test_cli_imports_a_folder_and_prints_the_summary(model_folder, s3, capsys):
    rc = main(["models", "import", str(model_folder), "--model-id", "acme/tiny-llm", "--bucket", BUCKET, "--no-progress"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["uploaded"] == 3 and summary["parameters"] == 520 and summary["revision"] == "local"
    assert summary["s3_uri"] == f"s3://{BUCKET}/base-models/acme/tiny-llm/local/"


def test_cli_names_the_problem(tmp_path, s3, capsys):
    rc = main(["models", "import", str(tmp_path), "--bucket", BUCKET])
    assert rc == 2
    assert "needs --model-id" in capsys.readouterr().err


def test_env_names_the_artifacts_bucket_from_config_or_sts(monkeypatch):
    from llmops.cli.models import artifacts_bucket

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():  # dev has no account in config: STS answers (moto's account 123456789012)
        assert artifacts_bucket("dev", None) == ("llmops-dev-artifacts-123456789012-us-east-1", "us-east-1")
    assert artifacts_bucket("staging", None) == ("llmops-stg-artifacts-111111111111-us-east-1", "us-east-1")  # name_prefix llmops-stg
