"""``llmops local ingest`` / ``llmops local ask`` end to end: embedded PostgreSQL, the offline model.

The module ingests the corpus once (``indexed``); tests that change documents work on their own
copy and state folder, so the tests hold in any order and on any xdist worker.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from llmops.cli.local_serve import model_cache_dir

from llmops.cli import main
from tests.lambdas.rag.corpus import ONBOARDING_TXT, POLICY_MD, WARRANTY_HTML, pdf_bytes

# One worker shares the module's index (pytest -n 2 --dist loadgroup).
pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("local_rag_cli")]


@pytest.fixture(scope="module")
def workspace():
    # Under /tmp with mode 0755: the server runs as an unprivileged user when tests run as root.
    root = Path(tempfile.mkdtemp(prefix="llmops-cli-"))
    root.chmod(0o755)
    docs = root / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "policy.md").write_text(POLICY_MD)
    (docs / "warranty.html").write_text(WARRANTY_HTML)
    (docs / "sub" / "onboarding.txt").write_text(ONBOARDING_TXT)
    (docs / "sub" / "invoice.pdf").write_bytes(pdf_bytes(["Invoices are due within 45 days.", "Late fees are 2 percent."]))
    (docs / "empty.txt").write_text("")
    (docs / "photo.txt").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    (docs / "deck.pptx").write_bytes(b"PK\x03\x04")
    (docs / ".hidden.md").write_text("never indexed")
    # Valid JSON of the wrong shape: each is quarantined with its reason and the run goes on.
    (docs / "scan.textract.json").write_text(json.dumps({"Blocks": [{"BlockType": "LINE", "Page": "abc", "Text": "x"}]}))
    (docs / "bad.curated.json").write_text(json.dumps({"schema": "llmops.curated-document/v1",
                                                       "pages": [{"page": 1, "text": "t"}], "metadata": ["en"]}))
    yield root
    shutil.rmtree(root, ignore_errors=True)


MODEL_CACHE = str(model_cache_dir())  # the repo's converted model, before LLMOPS_HOME moves the state


def _quiet_env(mp: pytest.MonkeyPatch, state: Path, cwd: Path) -> None:
    mp.setenv("LLMOPS_HOME", str(state))
    mp.setenv("LLMOPS_LOCAL_MODEL", "extractive")  # these tests check retrieval and citations; one test below generates
    mp.setenv("LLMOPS_MODEL_CACHE", MODEL_CACHE)
    for name in ("LLM_PROVIDER", "PROMPT_TABLE_NAME", "CHUNK_SIZE", "CHUNK_OVERLAP"):
        mp.delenv(name, raising=False)
    cwd.mkdir(exist_ok=True)
    mp.chdir(cwd)  # commands work from any directory


@pytest.fixture(scope="module")
def indexed(workspace):
    """The first and the second ingest of the corpus: (code, stdout, stderr) of each."""
    runs = []
    with pytest.MonkeyPatch.context() as mp:
        _quiet_env(mp, workspace / "state", workspace / "elsewhere")
        for _ in range(2):
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["local", "ingest", str(workspace / "docs"), "--no-progress"])
            runs.append((code, out.getvalue(), err.getvalue()))
    return runs


@pytest.fixture
def cli(workspace, monkeypatch, capsys):
    _quiet_env(monkeypatch, workspace / "state", workspace / "elsewhere")

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_ask_before_ingest_says_what_to_do(cli, workspace, monkeypatch):
    monkeypatch.setenv("LLMOPS_HOME", str(workspace / "never-ingested"))
    code, out, err = cli("local", "ask", "anything?")
    assert code == 1 and "run `llmops local ingest PATH` first" in err


def test_ingest_then_reingest_changes_nothing(indexed, workspace):
    (code, out, err), (code2, out2, _) = indexed
    assert code == 0, err
    assert "documents: 4 indexed, 0 unchanged, 5 skipped, 0 removed" in out
    assert "scan.textract.json: bad Textract output: Blocks.0.Page" in out
    assert "bad.curated.json: bad curated document: metadata" in out
    assert "Traceback" not in err
    assert "empty.txt: the document is empty" in out
    assert "photo.txt: binary content" in out
    assert "deck.pptx: unsupported file type" in out
    assert f"state:     {workspace / 'state'}" in out
    total = int(out.split(" written, ")[1].split(" in the index")[0])
    assert total > 0

    assert code2 == 0
    assert "documents: 0 indexed, 4 unchanged, 5 skipped, 0 removed" in out2
    assert f"chunks:    0 written, {total} in the index" in out2


def test_ask_json_cites_sources(cli, workspace, indexed):
    code, out, err = cli("local", "ask", "How many days do customers have to request a refund?", "--json", "--top-k", "2")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["llm_called"] is False and "No LLM was called" in answer["note"]
    assert len(answer["citations"]) == 2
    top = answer["citations"][0]
    assert top["source"] == str(workspace / "docs" / "policy.md") and top["page"] == 1 and top["chunk_index"] == 0
    assert "30 days" in answer["answer"] and answer["prompt_id"] == "rag-answer"
    # The interaction is logged in the monitoring record format, and `llmops monitor score` reads it.
    log = workspace / "state" / "interactions.jsonl"
    record = json.loads(log.read_text(encoding="utf-8").splitlines()[-1])
    assert record["question"] == "How many days do customers have to request a refund?"
    assert record["response"] == answer["answer"] and len(record["contexts"]) == 2
    assert record["metadata"]["scores"][0] == top["score"]
    # Which prompt version, model and embedding model answered: what `llmops experiments judge --local` splits by.
    assert record["metadata"]["prompt_version"] == answer["prompt_version"] and "model" in record["metadata"]
    assert record["metadata"]["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    code, out, err = cli("monitor", "score", str(log), "--json", "--no-model")
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["context_count"] == 2


def test_ask_text_output_and_filters(cli, workspace, indexed):
    code, out, err = cli("local", "ask", "When are invoices due?", "--filter", "page=1", "--filter", "document_type=pdf")
    assert code == 0, err
    assert "45 days" in out and "No LLM was called" in out
    assert f"[1] {workspace / 'docs' / 'sub' / 'invoice.pdf'} (page 1, chunk 0)" in out
    assert "[2]" not in out


@pytest.mark.parametrize(("argv", "message"), [
    (["local", "ask", "  "], "question must not be empty"),
    (["local", "ask", "q", "--top-k", "99"], "top_k must be an integer from 1 to 50"),
    (["local", "ask", "q", "--filter", "colour=red"], "unknown filter field(s): colour"),
    (["local", "ask", "q", "--filter", "nonsense"], "must look like FIELD=VALUE"),
    (["local", "ask", "q", "--filter", "page=one"], "page must be an integer"),
])
def test_bad_questions_are_refused(cli, argv, message):
    code, out, err = cli(*argv)
    assert code == 2 and message in err


def test_changed_and_deleted_files_are_picked_up(cli, workspace, monkeypatch):
    # Its own copy and state folder: the shared index stays as the other tests expect it.
    docs = workspace / "docs-changed"
    shutil.copytree(workspace / "docs", docs)
    monkeypatch.setenv("LLMOPS_HOME", str(workspace / "state-changed"))
    code, out, err = cli("local", "ingest", str(docs), "--no-progress")
    assert code == 0 and "documents: 4 indexed" in out, err
    (docs / "policy.md").write_text(POLICY_MD.replace("30 days", "60 days"))
    (docs / "warranty.html").unlink()
    code, out, err = cli("local", "ingest", str(docs), "--no-progress")
    assert code == 0
    assert "documents: 1 indexed, 2 unchanged, 5 skipped, 1 removed" in out
    code, out, err = cli("local", "ask", "refund period", "--json", "--top-k", "5")
    sources = {c["source"] for c in json.loads(out)["citations"]}
    assert str(docs / "warranty.html") not in sources


def test_missing_path_is_an_error(cli, workspace):
    code, out, err = cli("local", "ingest", str(workspace / "nope"))
    assert code == 2 and "no such file or folder" in err


def test_console_script_is_installed(workspace):
    script = Path(sys.executable).with_name("llmops")
    result = subprocess.run([str(script), "local", "ask", "--help"], capture_output=True, text=True, cwd="/", check=False)
    assert result.returncode == 0 and "--top-k" in result.stdout and "--json" in result.stdout


def test_configured_llm_without_credentials_is_reported(cli, monkeypatch, indexed):
    monkeypatch.setenv("LLM_PROVIDER", "bedrock")
    monkeypatch.setenv("LLM_MODEL_ID", "anthropic.claude-3-haiku-20240307-v1:0")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # no credentials cached by earlier tests
    code, out, err = cli("local", "ask", "How long is the warranty?")
    assert code == 1 and "the configured language model could not answer" in err and "credentials" in err.lower()


def test_ask_renders_the_repo_prompt_file_as_the_deploy_does(cli, indexed, monkeypatch):
    from lambdas.runtime.prompt_catalog.files import load_prompt_file

    monkeypatch.delenv("LLMOPS_PROMPTS_DIR", raising=False)
    repo_file, _ = load_prompt_file(Path(__file__).resolve().parents[3] / "prompts" / "rag-answer.yaml")
    code, out, err = cli("local", "ask", "How many days do customers have to request a refund?", "--json", "--show-prompt")
    assert code == 0, err
    answer = json.loads(out)
    # The content hash the synced catalog version of prompts/rag-answer.yaml carries.
    assert (answer["prompt_id"], answer["prompt_hash"]) == ("rag-answer", repo_file.content.content_hash())
    assert "Question: How many days do customers have to request a refund?" in err and "[1] (" in err


def test_ask_follows_an_edited_prompt_file_and_refuses_a_broken_one(cli, indexed, monkeypatch, tmp_path):
    prompts = Path(shutil.copytree(Path(__file__).resolve().parents[3] / "prompts", tmp_path / "prompts"))
    path = prompts / "rag-answer.yaml"
    path.write_text(path.read_text().replace("Answer:", "Reply in one line:"))
    monkeypatch.setenv("LLMOPS_PROMPTS_DIR", str(prompts))
    code, out, err = cli("local", "ask", "When are invoices due?", "--show-prompt")
    assert code == 0, err
    assert "Reply in one line:" in err and "45 days" in out  # the extractive answer path is unchanged
    path.write_text(path.read_text().replace("{question}", "{question"))
    code, out, err = cli("local", "ask", "When are invoices due?")
    assert code == 2 and "the prompt files are invalid" in err and "rag-answer.yaml: template" in err


def test_ask_generates_with_the_local_model_from_the_catalog_prompt(cli, indexed):
    code, out, err = cli("local", "ask", "How many days do customers have to request a refund?", "--json", "--model", "local")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["model"] == "local:smollm2-135m-instruct" and answer["prompt_id"] == "rag-answer"
    assert answer["answer"].strip() and answer.get("note") in (None, "")  # generated text, not the extractive note
    assert answer["citations"]
