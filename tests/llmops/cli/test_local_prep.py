"""``llmops local prep``: text and PDF files to curated documents that RAG's loader accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdas.runtime.data_prep.curated import validate_curated
from llmops.cli import main
from tests.lambdas.data_prep.helpers import make_pdf

PII_TEXT = "Meeting notes\n\nDr. Alan Turing (alan.turing@example.org, +44 20 7946 0958) approved it.\nCard 4111 1111 1111 1111 on file."


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "notes.txt").write_text(PII_TEXT, encoding="utf-8")
    (src / "sub" / "report.pdf").write_bytes(make_pdf(["Report for Maria Garcia", "Call 415-555-0199 today"]))
    (src / "locked.pdf").write_bytes(make_pdf(1, password="pw"))
    (src / "slides.pptx").write_bytes(b"PK\x03\x04")
    (src / ".hidden.txt").write_text("skip me", encoding="utf-8")
    return src


def _curated(out: Path, root: Path) -> dict[str, dict]:
    # Locally prepared documents cite the file itself: no bucket, the absolute path as key.
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in out.glob("*.curated.json")]
    assert all(d["source"]["bucket"] is None for d in docs)
    return {Path(d["source"]["key"]).relative_to(root.resolve()).as_posix(): d for d in docs}


def test_prep_writes_redacted_curated_documents_and_quarantines_bad_files(inputs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code = main(["local", "prep", str(inputs), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1, "a quarantined file makes the exit code non-zero"
    assert "pypdf stands in for Amazon Textract" in captured.err
    docs = _curated(out, inputs)
    assert set(docs) == {"notes.txt", "sub/report.pdf"}
    notes = validate_curated(docs["notes.txt"])
    text = notes["pages"][0]["text"]
    for secret in ("Alan Turing", "alan.turing@example.org", "+44 20 7946 0958", "4111 1111 1111 1111"):
        assert secret not in text
    assert "[NAME]" in text and "[EMAIL]" in text and "[CREDIT_DEBIT_NUMBER]" in text
    assert notes["lineage"]["extractor"] == "text" and notes["lineage"]["custom_step"] == "default-normalize"
    report = validate_curated(docs["sub/report.pdf"])
    assert report["lineage"]["extractor"] == "pypdf"
    assert [p["text"] for p in report["pages"]] == ["Report for [NAME]", "Call [PHONE] today"]
    assert report["lineage"]["redaction"]["entity_counts"] == {"NAME": 1, "PHONE": 1}
    reasons = {p.name: json.loads(p.read_text()) for p in (out / "quarantine").rglob("*.reason.json")}
    assert reasons["locked.pdf.reason.json"]["error"] == "EncryptedDocument"
    assert reasons["slides.pptx.reason.json"]["error"] == "UnsupportedDocument"
    assert "quarantined slides.pptx: UnsupportedDocument" in captured.err


def test_output_loads_with_the_rag_loader(inputs: Path, tmp_path: Path) -> None:
    loaders = pytest.importorskip("lambdas.runtime.rag.loaders")
    out = tmp_path / "out"
    main(["local", "prep", str(inputs / "notes.txt"), "--out", str(out), "--mask", "***"])
    (path,) = out.glob("*.curated.json")
    loaded = loaders.load_document(path.name, path.read_bytes())
    assert loaded.document_type == "curated" and "***" in loaded.pages[0].text
    assert loaded.source.key == str((inputs / "notes.txt").resolve()) and loaded.source.bucket is None


def test_missing_path_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["local", "prep", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_entity_type_selection_limits_redaction(tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text(PII_TEXT, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["local", "prep", str(src), "--out", str(out), "--entity-types", "EMAIL"]) == 0
    (doc,) = _curated(out, tmp_path).values()
    assert "Alan Turing" in doc["pages"][0]["text"] and "[EMAIL]" in doc["pages"][0]["text"]


def test_unknown_entity_types_are_refused(tmp_path: Path, capsys) -> None:
    src = tmp_path / "a.txt"
    src.write_text("x", encoding="utf-8")
    assert main(["local", "prep", str(src), "--out", str(tmp_path / "o"), "--entity-types", "EMAIL,SHOE_SIZE"]) == 2
    assert "SHOE_SIZE" in capsys.readouterr().err


def test_one_name_found_by_two_rules_counts_once(tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("Hello from Mr. John Smith.", encoding="utf-8")
    out = tmp_path / "o"
    assert main(["local", "prep", str(src), "--out", str(out)]) == 0
    (doc,) = _curated(out, tmp_path).values()
    assert doc["pages"][0]["text"] == "Hello from [NAME]."
    assert doc["lineage"]["redaction"]["entity_counts"] == {"NAME": 1}


@pytest.mark.parametrize(
    ("name", "body", "error", "reason"),
    [
        ("empty.txt", b"", "CorruptDocument", "empty.txt is empty (0 bytes)"),
        ("blank.md", b"  \n\n\t \n", "CorruptDocument", "blank.md: no text to curate"),
        ("empty.pdf", b"", "CorruptDocument", "empty.pdf is empty (0 bytes)"),
    ],
)
def test_empty_files_are_quarantined_not_curated(tmp_path: Path, capsys, name: str, body: bytes, error: str, reason: str) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / name).write_bytes(body)
    out = tmp_path / "out"
    assert main(["local", "prep", str(src), "--out", str(out)]) == 1
    assert not list(out.glob("*.curated.json"))
    stored = json.loads((out / "quarantine" / f"{name}.reason.json").read_text())
    assert stored["error"] == error and reason in stored["reason"]


def test_files_over_the_size_cap_are_refused(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "big.txt").write_bytes(b"word " * 300_000)  # 1.5 MB
    (src / "small.txt").write_text("fine", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["local", "prep", str(src), "--out", str(out), "--max-mb", "1"]) == 1
    stored = json.loads((out / "quarantine" / "big.txt.reason.json").read_text())
    assert stored["error"] == "DocumentTooLarge" and "big.txt is 1500000 bytes; the limit for .txt here is 1048576 bytes" in stored["reason"]
    assert len(list(out.glob("*.curated.json"))) == 1


@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_bad_size_cap_is_a_clear_error(tmp_path: Path, capsys, value: str) -> None:
    src = tmp_path / "a.txt"
    src.write_text("x", encoding="utf-8")
    assert main(["local", "prep", str(src), "--out", str(tmp_path / "o"), "--max-mb", value]) == 2
    assert "--max-mb must be a positive number of megabytes" in capsys.readouterr().err
