from __future__ import annotations

import pytest

from lambdas.runtime.rag.chunking import TokenChunker, chunk_id, content_hash, count_tokens
from lambdas.runtime.rag.loaders import DocumentRejected, SourceRef, html_to_text, load_document
from tests.lambdas.rag.corpus import POLICY_MD, WARRANTY_HTML, curated_json, pdf_bytes, textract_json


def test_html_keeps_visible_text_only():
    text = html_to_text(WARRANTY_HTML)
    assert "two-year warranty" in text
    assert "tracking" not in text and "color" not in text
    assert "Warranty\n\nAll laptops" in text


def test_pdf_pages_are_numbered_from_one():
    document = load_document("a.pdf", pdf_bytes(["Invoices are due in 45 days.", "Late fees are 2 percent."]))
    assert [(p.number, p.text) for p in document.pages] == [(1, "Invoices are due in 45 days."), (2, "Late fees are 2 percent.")]


def test_textract_lines_grouped_by_page():
    document = load_document("scan.textract.json", textract_json({1: ["First line", "Second line"], 3: ["Third page"]}))
    assert [(p.number, p.text) for p in document.pages] == [(1, "First line\nSecond line"), (3, "Third page")]


def test_curated_document_cites_its_original_source():
    document = load_document("curated/abc.curated.json", curated_json("abc", ["one", "two"], source_key="raw/a.pdf"))
    assert document.source == SourceRef("raw-bucket", "raw/a.pdf", "v1")
    assert document.metadata == {"language": "en", "document_type": "contract"}
    assert len(document.pages) == 2


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"   \n\n ", "empty"),
        ("nul.txt", b"abc\x00def", "binary"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "binary"),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "corrupt"),
        ("picture.pdf", pdf_bytes([""]), "no-text"),
        ("bad.json", b"{not json", "corrupt"),
        ("other.json", b'{"hello": 1}', "corrupt"),
        ("bad.curated.json", b'{"schema": "something-else"}', "corrupt"),
        ("slides.pptx", b"PK\x03\x04", "unsupported-type"),
        ("only-tags.html", b"<html><script>x()</script></html>", "no-text"),
    ],
)
def test_bad_documents_are_rejected_with_a_reason(name, data, reason):
    with pytest.raises(DocumentRejected) as info:
        load_document(name, data)
    assert info.value.reason == reason
    assert str(info.value)


def test_oversized_document_rejected_before_parsing():
    with pytest.raises(DocumentRejected) as info:
        load_document("big.txt", b"a" * 101, max_bytes=100)
    assert info.value.reason == "oversized" and "101 bytes" in str(info.value)


def test_chunks_respect_token_size_and_carry_their_source():
    text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(300))
    document = load_document("long.txt", text.encode())
    chunks = TokenChunker(chunk_size=64, chunk_overlap=8).split("doc-1", document, SourceRef("b", "uploads/long.txt", "v9"))
    assert len(chunks) > 10
    assert all(count_tokens(c.text) <= 64 for c in chunks)
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert text[c.metadata["start_offset"] : c.metadata["end_offset"]] == c.text
        assert c.metadata["source_bucket"] == "b" and c.metadata["source_key"] == "uploads/long.txt"
        assert c.metadata["source_version"] == "v9" and c.metadata["page"] == 1
        assert c.chunk_id == chunk_id("doc-1", c.metadata["chunk_index"], content_hash(c.text))


def test_chunk_ids_are_deterministic_and_change_with_content():
    chunker = TokenChunker(chunk_size=32, chunk_overlap=4)
    source = SourceRef(None, "a.md")
    first = chunker.split("d", load_document("a.md", POLICY_MD.encode()), source)
    again = chunker.split("d", load_document("a.md", POLICY_MD.encode()), source)
    edited = chunker.split("d", load_document("a.md", POLICY_MD.replace("30 days", "60 days").encode()), source)
    assert [c.chunk_id for c in first] == [c.chunk_id for c in again]
    assert {c.chunk_id for c in first} != {c.chunk_id for c in edited}
    assert len({c.chunk_id for c in first}) == len(first)


def test_chunks_never_span_pages():
    document = load_document("a.pdf", pdf_bytes(["Page one text.", "Page two text."]))
    chunks = TokenChunker().split("d", document, SourceRef(None, "a.pdf"))
    assert [(c.metadata["page"], c.text) for c in chunks] == [(1, "Page one text."), (2, "Page two text.")]


@pytest.mark.parametrize(("size", "overlap"), [(8, 0), (100, 100), (100, -1)])
def test_chunker_rejects_bad_sizes(size, overlap):
    with pytest.raises(ValueError, match="chunk_"):
        TokenChunker(chunk_size=size, chunk_overlap=overlap)
