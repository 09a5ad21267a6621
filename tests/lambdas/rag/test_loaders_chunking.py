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


@pytest.mark.parametrize(("name", "payload", "names"), [
    ("a.textract.json", {"Blocks": [{"BlockType": "LINE", "Page": "abc", "Text": "x"}]}, "Blocks.0.Page"),
    ("b.textract.json", {"Blocks": [{"BlockType": "LINE", "Page": None, "Text": "x"}]}, "Blocks.0.Page"),
    ("c.textract.json", {"Blocks": [{"BlockType": "LINE", "Page": 0, "Text": "x"}]}, "Blocks.0.Page"),
    ("d.textract.json", {"Blocks": [{"BlockType": "LINE", "Page": 1, "Text": ["x"]}]}, "Blocks.0.Text"),
    ("e.textract.json", [{"Blocks": []}, {"Blocks": [{"Page": 1}]}], "response 1: Blocks.0.BlockType"),
    ("f.curated.json", {"schema": "llmops.curated-document/v1", "pages": [{"page": 1, "text": "t"}], "metadata": ["en"]},
     "metadata"),
    ("g.curated.json", {"schema": "llmops.curated-document/v1", "pages": [{"page": 1, "text": {"x": 1}}]}, "pages.0.text"),
    ("h.curated.json", {"schema": "llmops.curated-document/v1", "pages": [{"page": "1", "text": "t"}]}, "pages.0.page"),
    ("j.curated.json", {"schema": "llmops.curated-document/v1", "pages": [{"page": 1, "text": "t"}], "source": {"key": 5}},
     "source.key"),
])
def test_malformed_json_is_rejected_naming_the_field(name, payload, names):
    import json

    with pytest.raises(DocumentRejected) as info:
        load_document(name, json.dumps(payload).encode())
    assert info.value.reason == "corrupt" and names in str(info.value)


def test_deeply_nested_json_is_rejected_not_crashing():
    with pytest.raises(DocumentRejected, match="nested too deeply") as info:
        load_document("deep.json", b"[" * 50_000 + b"]" * 50_000)
    assert info.value.reason == "corrupt"


def test_nul_and_lone_surrogates_from_json_are_cleaned_before_chunking():
    document = load_document("a.textract.json", b'{"Blocks": [{"BlockType": "LINE", "Page": 1, "Text": "a\\u0000b \\ud800c"}]}')
    assert document.pages[0].text == "ab ?c"
    TokenChunker(chunk_size=32, chunk_overlap=4).split("d", document, SourceRef(None, "a"))  # the tokenizer accepts it


def test_an_unexpected_parser_error_is_a_rejection_with_its_reason(monkeypatch):
    import lambdas.runtime.rag.loaders as loaders

    monkeypatch.setattr(loaders, "html_to_text", lambda text: (_ for _ in ()).throw(AssertionError("parser bug")))
    with pytest.raises(DocumentRejected, match="AssertionError: parser bug") as info:
        load_document("a.html", b"<p>hi</p>")
    assert info.value.reason == "corrupt"


@pytest.mark.parametrize("overlap", [0, 8, 20])
def test_chunk_offsets_point_at_the_real_place_when_text_repeats(overlap):
    paragraph = "The quarterly report is due on the first Monday of each quarter and goes to finance."
    text = "\n\n".join([paragraph] * 12 + ["Closing note: ask finance for the template."])
    document = load_document("r.txt", text.encode())
    chunks = TokenChunker(chunk_size=40, chunk_overlap=overlap).split("d", document, SourceRef(None, "r.txt"))
    assert len(chunks) > 5
    covered = [False] * len(text)
    starts = []
    for c in chunks:
        start, end = c.metadata["start_offset"], c.metadata["end_offset"]
        assert text[start:end] == c.text
        starts.append(start)
        covered[start:end] = [True] * (end - start)
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    # Every character of text lies in some chunk at its real place: nothing is left unplaced.
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())


def test_a_curated_document_as_data_prep_writes_it_loads():
    import json

    from lambdas.runtime.data_prep.curated import build_curated
    from lambdas.runtime.data_prep.enrich import EnrichedDocument
    from lambdas.runtime.data_prep.textract import Page as PrepPage

    enriched = EnrichedDocument(
        pages=[PrepPage(1, "The lease ends in March 2027."), PrepPage(2, "Rent is due monthly.")], language="en",
        entity_counts={"NAME": 1}, mask="[REDACTED]", entities=[{"type": "DATE", "text": "March 2027", "score": 0.99}],
        key_phrases=["the lease"],
        classification={"classes": [{"name": "contract", "score": 0.97}], "labels": []})
    doc = build_curated(document_id="lease-1", source={"bucket": "raw", "key": "raw/lease.pdf", "version_id": "v3"},
                        enriched=enriched, extractor="pypdf")
    loaded = load_document("curated/lease-1.curated.json", json.dumps(doc).encode())
    assert [(p.number, p.text) for p in loaded.pages] == [(1, "The lease ends in March 2027."), (2, "Rent is due monthly.")]
    assert loaded.source == SourceRef("raw", "raw/lease.pdf", "v3") and loaded.metadata == {"language": "en"}
