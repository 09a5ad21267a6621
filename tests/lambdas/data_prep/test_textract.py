"""Textract results -> page Markdown, and paging through NextToken (botocore Stubber)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.runtime.data_prep.errors import ServiceThrottled, TextractJobFailed, TextractPartialSuccess
from lambdas.runtime.data_prep.textract import blocks_to_pages, check_status, fetch_job, start_job
from tests.lambdas.data_prep.textract_blocks import PageBuilder, paginate


def _analysis_document() -> list[dict]:
    """Three pages: layout with title/headers/list/table/form, a text-only page, a table page."""
    p1 = PageBuilder(1)
    p1.layout("LAYOUT_HEADER", ["ACME Corp - Confidential"])
    p1.layout("LAYOUT_TITLE", ["Quarterly Report"])
    p1.layout("LAYOUT_SECTION_HEADER", ["1. Summary"])
    p1.layout("LAYOUT_TEXT", ["Revenue grew in every region this", "quarter, led by EMEA."])
    p1.layout_list(["Cloud revenue up 12%", "Support costs down 3%"])
    table_top = p1.top
    p1.table([["Region", "Q1", "Q2"], ["EMEA", "10", "12"], ["AMER", "20", "21"]])
    p1._add(
        {
            "BlockType": "LAYOUT_TABLE",
            "Id": "layout-table-1",
            "Geometry": {"BoundingBox": {"Left": 0.08, "Top": table_top - 0.01, "Width": 0.7, "Height": 0.12}},
            "Relationships": [],
        }
    )
    kv_top = p1.top
    p1.key_value("Prepared by:", "Finance team")
    p1.key_value("Approved:", "", selected=True)
    p1._add(
        {
            "BlockType": "LAYOUT_KEY_VALUE",
            "Id": "layout-kv-1",
            "Geometry": {"BoundingBox": {"Left": 0.08, "Top": kv_top - 0.005, "Width": 0.8, "Height": 0.07}},
            "Relationships": [],
        }
    )
    p1.layout("LAYOUT_PAGE_NUMBER", ["1"])
    p2 = PageBuilder(2)
    p2.layout("LAYOUT_SECTION_HEADER", ["2. Outlook"])
    p2.layout("LAYOUT_TEXT", ["We expect steady growth."])
    p2.layout("LAYOUT_FOOTER", ["Page 2 of 3"])
    p3 = PageBuilder(3)
    p3.layout("LAYOUT_SECTION_HEADER", ["Appendix | Data"])
    t_top = p3.top
    p3.table([["Item", "Value"], ["Total | net", "42"]])
    p3._add(
        {
            "BlockType": "LAYOUT_TABLE",
            "Id": "layout-table-3",
            "Geometry": {"BoundingBox": {"Left": 0.08, "Top": t_top - 0.01, "Width": 0.5, "Height": 0.08}},
            "Relationships": [],
        }
    )
    return p1.blocks + p2.blocks + p3.blocks


def test_layout_pages_render_in_reading_order_with_markdown_tables_and_forms() -> None:
    pages = blocks_to_pages(_analysis_document())
    assert [p.page for p in pages] == [1, 2, 3]
    assert pages[0].text == (
        "# Quarterly Report\n\n"
        "## 1. Summary\n\n"
        "Revenue grew in every region this quarter, led by EMEA.\n\n"
        "- Cloud revenue up 12%\n- Support costs down 3%\n\n"
        "| Region | Q1 | Q2 |\n| --- | --- | --- |\n| EMEA | 10 | 12 |\n| AMER | 20 | 21 |\n\n"
        "**Prepared by:** Finance team\n**Approved:** [x]"
    )
    # Running headers, footers and printed page numbers are dropped: the page number is data.
    assert "Confidential" not in pages[0].text and "Page 2 of 3" not in pages[1].text
    assert pages[1].text == "## 2. Outlook\n\nWe expect steady growth."
    # Pipes inside cells are escaped so the Markdown table keeps its columns.
    assert "| Total \\| net | 42 |" in pages[2].text


def test_text_detection_lines_keep_order_and_tables_replace_their_lines() -> None:
    p1 = PageBuilder(1)
    p1.line("Invoice 2024-117")
    p1.line("Bill to: Example Ltd")
    p1.table([["Qty", "Item", "Price"], ["2", "Widget", "9.99"]], header=False)
    p1.line("Thank you for your business.")
    p2 = PageBuilder(2)
    p2.line("Terms: 30 days net.")
    pages = blocks_to_pages(p1.blocks + p2.blocks)
    assert pages[0].text == (
        "Invoice 2024-117\nBill to: Example Ltd\n\n"
        "| Qty | Item | Price |\n| --- | --- | --- |\n| 2 | Widget | 9.99 |\n\n"
        "Thank you for your business."
    )
    assert pages[1].text == "Terms: 30 days net."


def test_layout_regions_without_table_or_form_results_keep_their_lines() -> None:
    p = PageBuilder(1)
    p.layout("LAYOUT_TITLE", ["Order"])
    p.layout("LAYOUT_KEY_VALUE", ["Name: Example Ltd", "Date: 2026-11-25"])
    p.layout("LAYOUT_TABLE", ["Item Qty", "Widget 2"])
    assert blocks_to_pages(p.blocks)[0].text == "# Order\n\nName: Example Ltd\nDate: 2026-11-25\n\nItem Qty\nWidget 2"


def test_merged_cells_show_their_text_once() -> None:
    p = PageBuilder(1)
    p.table([["Name", "Score", ""], ["Alpha", "1", "2"]], merged=[(1, 2, 1, 2)])
    text = blocks_to_pages(p.blocks)[0].text
    assert text.splitlines()[0] == "| Name | Score |  |"


def test_forms_without_layout_render_key_value_lines() -> None:
    p = PageBuilder(1)
    p.line("Application form")
    p.key_value("Applicant:", "Example Ltd")
    p.key_value("Urgent:", "", selected=False)
    assert blocks_to_pages(p.blocks)[0].text == "Application form\n**Applicant:** Example Ltd\n**Urgent:** [ ]"


def _stub_client():
    client = boto3.client("textract", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_fetch_job_follows_every_next_token() -> None:
    blocks = _analysis_document()
    responses = paginate(blocks, 7, pages=3, analysis=True)
    assert len(responses) > 5
    client, stub = _stub_client()
    for n, r in enumerate(responses):
        expected = {"JobId": "job-1", "MaxResults": 1000}
        if n:
            expected["NextToken"] = f"token-{n}"
        stub.add_response("get_document_analysis", r, expected)
    with stub:
        result = fetch_job(client, "job-1", analysis=True)
    stub.assert_no_pending_responses()
    assert result.responses == len(responses)
    assert len(result.blocks) == len(blocks)
    assert blocks_to_pages(result.blocks) == blocks_to_pages(blocks)


def test_text_detection_api_is_used_without_features() -> None:
    p = PageBuilder(1)
    p.line("Hello")
    client, stub = _stub_client()
    stub.add_response("get_document_text_detection", paginate(p.blocks, 100, pages=1, analysis=False)[0], {"JobId": "j", "MaxResults": 1000})
    with stub:
        result = fetch_job(client, "j", analysis=False)
    assert blocks_to_pages(result.blocks)[0].text == "Hello"


def test_failed_and_partial_jobs_raise_the_quarantine_errors() -> None:
    client, stub = _stub_client()
    stub.add_response("get_document_analysis", {"JobStatus": "FAILED", "StatusMessage": "Unsupported document format", "Blocks": []})
    p = PageBuilder(1)
    p.line("only page one")
    partial = paginate(p.blocks, 100, pages=2, analysis=True, status="PARTIAL_SUCCESS", warnings=[{"ErrorCode": "PAGE_PROCESSING_FAILED", "Pages": [2]}])[0]
    stub.add_response("get_document_analysis", partial)
    with stub:
        failed = fetch_job(client, "a", analysis=True)
        with pytest.raises(TextractJobFailed, match="Unsupported document format"):
            check_status(failed)
        part = fetch_job(client, "b", analysis=True)
        with pytest.raises(TextractPartialSuccess, match=r"pages \[2\].*PAGE_PROCESSING_FAILED"):
            check_status(part)


def test_throttling_becomes_service_throttled() -> None:
    client, stub = _stub_client()
    stub.add_client_error("start_document_analysis", service_error_code="ProvisionedThroughputExceededException", http_status_code=400)
    with stub, pytest.raises(ServiceThrottled, match="Textract"):
        start_job(client, bucket="data-bucket", key="raw/a.pdf", version_id="v1", features=["TABLES"], topic_arn="arn:aws:sns:us-east-1:123456789012:t", role_arn="arn:aws:iam::123456789012:role/r")


def test_start_job_requests_features_version_and_sns_channel() -> None:
    client, stub = _stub_client()
    stub.add_response(
        "start_document_analysis",
        {"JobId": "job-9"},
        {
            "DocumentLocation": {"S3Object": {"Bucket": "data-bucket", "Name": "raw/a.pdf", "Version": "v1"}},
            "FeatureTypes": ["LAYOUT", "TABLES"],
            "NotificationChannel": {"SNSTopicArn": "arn:aws:sns:us-east-1:123456789012:t", "RoleArn": "arn:aws:iam::123456789012:role/r"},
            "JobTag": "doc-1",
        },
    )
    with stub:
        assert start_job(client, bucket="data-bucket", key="raw/a.pdf", version_id="v1", features=["LAYOUT", "TABLES"], topic_arn="arn:aws:sns:us-east-1:123456789012:t", role_arn="arn:aws:iam::123456789012:role/r", job_tag="doc-1") == "job-9"
    with pytest.raises(ValueError, match="QUERIES"):
        start_job(client, bucket="b", key="k", version_id=None, features=["QUERIES"], topic_arn="t", role_arn="r")

_line_text = st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=40).filter(str.strip)


@settings(max_examples=60, deadline=None)
@given(doc=st.lists(st.lists(_line_text, min_size=0, max_size=8), min_size=1, max_size=5), per_response=st.integers(1, 50))
def test_text_detection_keeps_every_line_on_its_page_in_order(doc: list[list[str]], per_response: int) -> None:
    """Whatever the text and however the results are paged, no line is lost or moved."""
    blocks = []
    for number, lines in enumerate(doc, start=1):
        page = PageBuilder(number)
        for text in lines:
            page.line(text)
        blocks.extend(page.blocks)
    client, stub = _stub_client()
    for response in paginate(blocks, per_response, pages=len(doc), analysis=False):
        stub.add_response("get_document_text_detection", response)
    with stub:
        result = fetch_job(client, "job", analysis=False)
    pages = blocks_to_pages(result.blocks)
    assert [p.page for p in pages] == list(range(1, len(doc) + 1))
    for page, lines in zip(pages, doc):
        assert page.text == "\n".join(lines)


# --- streaming results and idempotent starts (issue 10) --------------------------------------------


def _stream(responses: list[dict], analysis: bool = True):
    """stream_job over stubbed responses; returns (result, pages, responses fetched when each page came)."""
    from lambdas.runtime.data_prep.textract import stream_job

    client, stub = _stub_client()
    api = "get_document_analysis" if analysis else "get_document_text_detection"
    for r in responses:
        stub.add_response(api, r)
    calls = {"n": 0}
    original = getattr(client, api)

    def counted(**kwargs):
        calls["n"] += 1
        return original(**kwargs)

    setattr(client, api, counted)
    pages, seen_at = [], []

    def on_page(page) -> None:
        pages.append(page)
        seen_at.append(calls["n"])

    with stub:
        result = stream_job(client, "job", analysis=analysis, on_page=on_page)
    stub.assert_no_pending_responses()
    return result, pages, seen_at


@settings(max_examples=60, deadline=None)
@given(doc=st.lists(st.lists(_line_text, min_size=1, max_size=8), min_size=1, max_size=6), per_response=st.integers(1, 50))
def test_streamed_pages_equal_the_whole_document_rendering(doc: list[list[str]], per_response: int) -> None:
    blocks = []
    for number, lines in enumerate(doc, start=1):
        page = PageBuilder(number)
        for text in lines:
            page.line(text)
        blocks.extend(page.blocks)
    responses = paginate(blocks, per_response, pages=len(doc), analysis=False)
    result, pages, seen_at = _stream(responses, analysis=False)
    assert pages == blocks_to_pages(blocks)
    assert result.blocks == [] and result.responses == len(responses)
    # A page is rendered as soon as the next one starts, not after the last response.
    assert seen_at == sorted(seen_at)


def test_pages_are_rendered_before_the_last_response_arrives() -> None:
    blocks = _analysis_document()
    responses = paginate(blocks, 7, pages=3, analysis=True)
    _, pages, seen_at = _stream(responses)
    assert [p.page for p in pages] == [1, 2, 3]
    assert seen_at[0] < len(responses), "page 1 waited for every response: the whole job was held"
    assert pages == blocks_to_pages(blocks)


def test_blocks_out_of_page_order_are_refused() -> None:
    from lambdas.runtime.data_prep.textract import ResultsOutOfOrder

    one, two = PageBuilder(1), PageBuilder(2)
    one.line("first")
    two.line("second")
    shuffled = two.blocks + one.blocks
    with pytest.raises(ResultsOutOfOrder, match="blocks of page 1 came after page 2"):
        _stream(paginate(shuffled, 1, pages=2, analysis=False), analysis=False)


def test_a_partial_job_streams_no_pages_but_keeps_every_warning() -> None:
    p = PageBuilder(1)
    p.line("only page one")
    responses = paginate(p.blocks, 1, pages=2, analysis=True, status="PARTIAL_SUCCESS",
                         warnings=[{"ErrorCode": "PAGE_PROCESSING_FAILED", "Pages": [2]}])
    result, pages, _ = _stream(responses)
    assert pages == []
    with pytest.raises(TextractPartialSuccess, match=r"pages \[2\]"):
        check_status(result)


def test_request_token_is_stable_per_execution_and_version_and_valid() -> None:
    import re

    from lambdas.runtime.data_prep.textract import request_token

    token = request_token("exec-1", "bucket", "raw/a.pdf", "v1")
    assert token == request_token("exec-1", "bucket", "raw/a.pdf", "v1")
    assert token != request_token("exec-2", "bucket", "raw/a.pdf", "v1") != request_token("exec-1", "bucket", "raw/a.pdf", "v2")
    assert re.fullmatch(r"[a-zA-Z0-9-_]{1,64}", token)


def test_start_job_sends_the_client_request_token() -> None:
    client, stub = _stub_client()
    stub.add_response("start_document_text_detection", {"JobId": "job-1"}, {
        "DocumentLocation": {"S3Object": {"Bucket": "data-bucket", "Name": "raw/a.pdf"}},
        "NotificationChannel": {"SNSTopicArn": "arn:aws:sns:us-east-1:123456789012:t", "RoleArn": "arn:aws:iam::123456789012:role/r"},
        "ClientRequestToken": "tok-1",
    })
    with stub:
        assert start_job(client, bucket="data-bucket", key="raw/a.pdf", version_id=None, features=[], topic_arn="arn:aws:sns:us-east-1:123456789012:t",
                         role_arn="arn:aws:iam::123456789012:role/r", client_request_token="tok-1") == "job-1"
