"""Upload classification: supported types, Textract limits, encrypted and corrupt PDFs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdas.runtime.data_prep.documents import MB, classify_upload, dataset_name_for, document_id_for, pdf_pages, text_pages
from lambdas.runtime.data_prep.errors import CorruptDocument, DocumentTooLarge, EncryptedDocument, UnsupportedDocument
from tests.lambdas.data_prep.helpers import make_pdf


def classify(key: str, data: bytes, size: int | None = None):
    return classify_upload(bucket="data", key=key, version_id="v1", size=len(data) if size is None else size, head=data[:65536], tail=data[-65536:])


def test_pdf_goes_to_textract_and_text_skips_it() -> None:
    doc = classify("raw/reports/q1.pdf", make_pdf(2))
    assert (doc.kind, doc.content_type) == ("textract", "application/pdf")
    assert classify("raw/notes.md", "# Notes\nünïcode".encode()).kind == "text"
    assert classify("raw/scan.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100).content_type == "image/png"


@pytest.mark.parametrize("key", ["raw/a.docx", "raw/b.exe", "raw/noext"])
def test_unsupported_types_name_the_allowed_ones(key: str) -> None:
    with pytest.raises(UnsupportedDocument, match=r"allowed: .*\.pdf"):
        classify(key, b"PK\x03\x04 whatever")
    with pytest.raises(UnsupportedDocument, match="raw/datasets/<dataset-name>/"):
        classify("raw/data.jsonl", b"{}")


def test_encrypted_pdf_is_refused() -> None:
    with pytest.raises(EncryptedDocument, match="password"):
        classify("raw/secret.pdf", make_pdf(1, password="s3cret"))
    with pytest.raises(EncryptedDocument):
        pdf_pages(make_pdf(1, password="s3cret"), "secret.pdf")


def test_truncated_and_mislabelled_pdfs_are_corrupt() -> None:
    pdf = make_pdf(3)
    with pytest.raises(CorruptDocument, match="%%EOF"):
        classify("raw/cut.pdf", pdf[: len(pdf) // 2])
    with pytest.raises(CorruptDocument, match="signature"):
        classify("raw/fake.pdf", b"<html>not a pdf</html>")
    with pytest.raises(CorruptDocument):
        pdf_pages(b"%PDF-1.7\n1 0 obj <</Type /Catalog", "broken.pdf")
    with pytest.raises(CorruptDocument, match="empty"):
        classify("raw/empty.pdf", b"", size=0)


def test_textract_size_limits_per_type() -> None:
    with pytest.raises(DocumentTooLarge, match="500 MB"):
        classify("raw/huge.pdf", make_pdf(1), size=501 * MB)
    with pytest.raises(DocumentTooLarge, match="image/jpeg"):
        classify("raw/big.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 10, size=11 * MB)
    assert classify("raw/ok.pdf", make_pdf(1), size=499 * MB).kind == "textract"


def test_binary_text_files_are_corrupt() -> None:
    with pytest.raises(CorruptDocument, match="NUL"):
        classify("raw/a.txt", b"abc\x00def")
    with pytest.raises(CorruptDocument, match="UTF-8"):
        classify("raw/a.txt", b"caf\xe9 au lait " * 10)


def test_dataset_uploads_are_records() -> None:
    doc = classify("raw/datasets/support-qa/batch-1.jsonl", b'{"instruction": "a", "response": "b"}\n')
    assert (doc.kind, doc.dataset) == ("records", "support-qa")
    assert dataset_name_for("raw/datasets/Bad_Name/x.jsonl") is None


@given(key=st.text(min_size=1, max_size=300))
def test_document_ids_are_safe_stable_and_distinct(key: str) -> None:
    doc_id = document_id_for(key)
    assert doc_id == document_id_for(key)
    assert len(doc_id) <= 100 and all(c.isascii() and (c.isalnum() or c == "-") for c in doc_id)
    assert document_id_for(key + "x") != doc_id


def test_text_pages_split_on_form_feed() -> None:
    assert text_pages("one\fpage two\n") == [(1, "one"), (2, "page two")]
