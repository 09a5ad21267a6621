"""`llmops prompts validate|render`: offline checks with file+field lines, local and catalog renders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from llmops.cli import main

REPO_PROMPTS = Path(__file__).resolve().parents[3] / "prompts"


def test_repo_prompts_validate(capsys):
    assert main(["prompts", "validate", str(REPO_PROMPTS)]) == 0
    assert "3 prompt file(s) OK: rag-answer, reasoned-answer, ticket-triage" in capsys.readouterr().out


def test_validate_prints_one_line_per_problem_with_file_and_field(tmp_path, capsys):
    shutil.copy(REPO_PROMPTS / "rag-answer.yaml", tmp_path)
    (tmp_path / "bad-vars.yaml").write_text(
        "id: bad-vars\ndescription: d\ntemplate: 'Hi {name} {extra}'\nvariables:\n  name: {type: string}\n  unused: {type: integer}\n"
    )
    (tmp_path / "bad-shot.yaml").write_text(
        "id: other-name\ndescription: d\ntechnique: few-shot\nexample_template: 'Q: {q} A: {a}'\n"
        "examples: [{q: '1'}]\ntemplate: '{x}'\nvariables: {x: {}}\nmodel_parameters: {temperature: 5}\n"
    )
    (tmp_path / "not-yaml.yaml").write_text("id: [unclosed\n")
    assert main(["prompts", "validate", str(tmp_path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert f"{tmp_path}/bad-vars.yaml: variables: template uses undeclared variable(s): extra" in lines
    assert f"{tmp_path}/bad-vars.yaml: variables: declared but not used by the template: unused" in lines
    assert f"{tmp_path}/bad-shot.yaml: id: 'other-name' must match the file name (bad-shot.yaml)" in lines
    assert any(line.startswith(f"{tmp_path}/bad-shot.yaml: model_parameters.temperature: ") for line in lines)
    assert any(line.startswith(f"{tmp_path}/not-yaml.yaml: not valid YAML (line ") for line in lines)
    assert not any("rag-answer.yaml" in line for line in lines)
    assert lines[-1].endswith(f"problem(s) in {tmp_path}")


def test_few_shot_example_problems_are_located(tmp_path, capsys):
    (tmp_path / "shots.yaml").write_text(
        "id: shots\ndescription: d\ntechnique: few-shot\nexample_template: 'Q: {q} A: {a}'\n"
        "examples: [{q: '1', a: '2'}, {q: '3'}]\ntemplate: '{x}'\nvariables: {x: {}}\n"
    )
    assert main(["prompts", "validate", str(tmp_path / "shots.yaml")]) == 1
    assert f"{tmp_path}/shots.yaml: examples.1: missing key(s) used by example_template: a" in capsys.readouterr().err


def test_validate_an_empty_or_missing_folder_fails(tmp_path, capsys):
    assert main(["prompts", "validate", str(tmp_path)]) == 1
    assert main(["prompts", "validate", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert "no prompt files" in err and "no such file or directory" in err


def test_local_render_coerces_typed_variables(capsys):
    code = main(["prompts", "render", "reasoned-answer", "--path", str(REPO_PROMPTS), "--json",
                 "--var", "document=Revenue 10, cost 4", "--var", "question=Margin?", "--var", "max_steps=3"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == 0 and out["prompt_id"] == "reasoned-answer" and len(out["content_hash"]) == 64
    assert "Use at most 3 steps." in out["text"] and out["messages"][1]["role"] == "human"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rag-answer", "--var", "question=q"], "missing variable(s): context"),
        (["rag-answer", "--var", "question=q", "--var", "context=c", "--var", "x=1"], "unexpected variable(s): x"),
        (["rag-answer", "--var", "question"], "expected NAME=VALUE"),
        (["reasoned-answer", "--var", "document=d", "--var", "question=q", "--var", "max_steps=many"], "variables.max_steps: cannot read 'many' as integer"),
        (["missing-prompt"], "no prompt file with id 'missing-prompt'"),
        (["rag-answer", "--alias", "prod"], "give --table"),
    ],
)
def test_local_render_errors_are_one_clear_line(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("PROMPT_TABLE_NAME", raising=False)
    assert main(["prompts", "render", *argv, "--path", str(REPO_PROMPTS)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_render_from_a_deployed_catalog_by_alias_and_version(capsys, monkeypatch):
    from lambdas.runtime.prompt_catalog.store import PromptCatalogStore
    from lambdas.runtime.prompt_catalog.sync import sync_directory
    from tests.lambdas.prompt_catalog.conftest import create_catalog_table

    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        ddb = boto3.client("dynamodb")
        create_catalog_table(ddb, "catalog")
        store = PromptCatalogStore("catalog", dynamodb=ddb)
        sync_directory(store, REPO_PROMPTS)
        assert main(["prompts", "render", "ticket-triage", "--table", "catalog", "--json", "--var", "ticket=refund please"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert (out["version"], out["alias"]) == (1, "prod")
        assert out["text"].endswith("Ticket: refund please\nQueue:")
        assert main(["prompts", "render", "ticket-triage", "--table", "catalog", "--version", "2", "--var", "ticket=x"]) == 1
        assert "has no version 2" in capsys.readouterr().err
