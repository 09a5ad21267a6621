"""Comprehend enrichment through a botocore Stubber (moto lacks DetectEntities and ClassifyDocument;
its DetectPiiEntities ignores the input), with response shapes from the Comprehend API reference."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from lambdas.runtime.data_prep.comprehend import PII_LANGUAGES, ComprehendAnalyzer
from lambdas.runtime.data_prep.enrich import PiiLeak, assert_no_leak, enrich_pages
from lambdas.runtime.data_prep.errors import ServiceThrottled, UnsupportedLanguage
from lambdas.runtime.data_prep.local_pii import LocalPiiDetector
from lambdas.runtime.data_prep.textract import Page

CLASSIFIER = "arn:aws:comprehend:us-east-1:123456789012:document-classifier-endpoint/contracts"


def _client():
    client = boto3.client("comprehend", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def _pii(text: str, *items: tuple[str, str, float]) -> dict:
    """A DetectPiiEntities response locating each (type, substring, score) in ``text``."""
    entities = []
    for kind, needle, score in items:
        start = text.index(needle)
        entities.append({"Score": score, "Type": kind, "BeginOffset": start, "EndOffset": start + len(needle)})
    return {"Entities": entities}


def test_multi_piece_document_is_redacted_and_offsets_merged_across_pieces() -> None:
    page1 = "Résumé of Zoë Müller. Email zoe.mueller@example.com, phone +49 30 1234567."
    page2 = "Zoë Müller lives in Berlin. Her SSN-like id 123-45-6789 is private."
    client, stub = _client()
    # Small byte limit: the joined text ("page1\n\npage2") splits into several pieces.
    analyzer = ComprehendAnalyzer(client, pii_entity_types=("NAME", "EMAIL", "PHONE", "SSN"), min_score=0.6, byte_limit=80)
    whole = page1 + "\n\n" + page2
    from lambdas.runtime.data_prep.spans import split_by_bytes

    pieces = [p for p in split_by_bytes(whole, 80) if p.text.strip()]
    assert len(pieces) >= 2
    stub.add_response("detect_dominant_language", {"Languages": [{"LanguageCode": "de", "Score": 0.2}, {"LanguageCode": "en", "Score": 0.8}]}, {"Text": pieces[0].text})
    for piece in pieces:
        found = []
        for kind, needle, score in (
            ("NAME", "Zoë Müller", 0.99),
            ("EMAIL", "zoe.mueller@example.com", 0.99),
            ("PHONE", "+49 30 1234567", 0.95),
            ("SSN", "123-45-6789", 0.9),
            ("ADDRESS", "Berlin", 0.9),  # not a configured type: kept
            ("NAME", "Her", 0.3),  # below min_score: kept
        ):
            if needle in piece.text:
                found.append((kind, needle, score))
        stub.add_response("detect_pii_entities", _pii(piece.text, *found), {"Text": piece.text, "LanguageCode": "en"})
    for _ in pieces:
        stub.add_response("detect_entities", {"Entities": [{"Score": 0.9, "Type": "LOCATION", "Text": "Berlin", "BeginOffset": 0, "EndOffset": 6}]}, {"Text": ANY, "LanguageCode": "en"})
    for _ in pieces:
        stub.add_response("detect_key_phrases", {"KeyPhrases": [{"Score": 0.8, "Text": "private id", "BeginOffset": 0, "EndOffset": 10}]}, {"Text": ANY, "LanguageCode": "en"})
    with stub:
        doc = enrich_pages([Page(1, page1), Page(2, page2)], detector=analyzer, analyzer=analyzer, mask="[{type}]", pii_languages=PII_LANGUAGES)
    stub.assert_no_pending_responses()
    assert doc.language == "en"
    assert doc.pages[0].text == "Résumé of [NAME]. Email [EMAIL], phone [PHONE]."
    assert doc.pages[1].text == "[NAME] lives in Berlin. Her SSN-like id [SSN] is private."
    for secret in ("Zoë Müller", "zoe.mueller@example.com", "+49 30 1234567", "123-45-6789"):
        assert all(secret not in p.text for p in doc.pages)
    assert doc.entities == [{"type": "LOCATION", "text": "Berlin", "score": 0.9}]
    assert doc.key_phrases == ["private id"]
    assert doc.entity_counts["NAME"] >= 2 and doc.entity_counts["SSN"] == 1


def test_custom_classifier_endpoint_classifies_the_opening() -> None:
    client, stub = _client()
    analyzer = ComprehendAnalyzer(client, classifier_endpoint_arn=CLASSIFIER)
    stub.add_response(
        "classify_document",
        {"Classes": [{"Name": "invoice", "Score": 0.2}, {"Name": "contract", "Score": 0.8}], "Labels": []},
        {"Text": "This agreement is made between the parties.", "EndpointArn": CLASSIFIER},
    )
    with stub:
        result = analyzer.classify("This agreement is made between the parties.")
    assert result["top"] == "contract" and result["classes"][0] == {"name": "contract", "score": 0.8}
    assert ComprehendAnalyzer(client).classify("anything") is None


def test_unsupported_pii_language_is_refused_not_published_unredacted() -> None:
    client, stub = _client()
    stub.add_response("detect_dominant_language", {"Languages": [{"LanguageCode": "fi", "Score": 0.97}]})
    analyzer = ComprehendAnalyzer(client)
    with stub, pytest.raises(UnsupportedLanguage, match="'fi'"):
        enrich_pages([Page(1, "Hyvää huomenta, Matti Meikäläinen.")], detector=analyzer, analyzer=analyzer, mask="[{type}]", pii_languages=PII_LANGUAGES)


def test_comprehend_throttling_is_raised_for_the_workflow_to_retry() -> None:
    client, stub = _client()
    stub.add_client_error("detect_pii_entities", service_error_code="TooManyRequestsException", http_status_code=400)
    with stub, pytest.raises(ServiceThrottled, match="Comprehend"):
        ComprehendAnalyzer(client).detect_pii("Jane Doe", "en")


NO_LEAK_CORPUS = [
    "Dear Mr. Robert Brown, your card 4539 1488 0343 6467 was charged. Robert Brown, call +1 (212) 555-0143.",
    "Contact maria.garcia@example.org or Maria Garcia at 415-555-0199; SSN 078-05-1120.",
    "Server 10.0.12.7 logged in user Emily Clark (emily.clark@corp.example).\fEmily Clark signed page two.",
]


@pytest.mark.parametrize("text", NO_LEAK_CORPUS)
def test_no_detected_pii_survives_in_the_curated_text(text: str) -> None:
    """Redaction no-leak: every span the detector finds is absent from every output page."""
    pages = [Page(i + 1, t) for i, t in enumerate(text.split("\f"))]
    detector = LocalPiiDetector()
    whole = "\n\n".join(p.text for p in pages)
    detected = {whole[s.start : s.end] for s in detector.detect(whole)}
    assert detected, "the corpus must contain PII for the test to mean anything"
    doc = enrich_pages(pages, detector=detector, mask="[{type}]")
    for secret in detected:
        for page in doc.pages:
            assert secret not in page.text
    # Re-detecting on the output finds nothing either.
    assert detector.detect(doc.text) == []


def test_leak_check_catches_a_survivor() -> None:
    with pytest.raises(PiiLeak, match="NAME"):
        assert_no_leak(["[NAME] met Jane Doe"], {"Jane Doe": "NAME"}, "[{type}]")
    assert_no_leak(["[NAME] met [NAME]"], {"Jane Doe": "NAME"}, "[{type}]")
