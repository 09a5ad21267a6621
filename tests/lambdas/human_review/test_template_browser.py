"""The worker template rendered by a real Liquid engine and opened in a real headless Chromium."""

from __future__ import annotations

import html
import shutil
import subprocess

import pytest

from lambdas.runtime.human_review.model import ReviewInput
from lambdas.runtime.human_review.template import render

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.xdist_group("chromium")

ATTACK = '<script>document.body.setAttribute("data-pwned","script")</script><img src=x onerror="document.body.setAttribute(\'data-pwned\',\'img\')">'
REVIEW = ReviewInput(
    interaction_id="q-0001",
    question="How long do refunds take? " + ATTACK,
    answer="Refunds take five days [1]. " + ATTACK,
    contexts=({"text": "Refunds take 5 business days & are paid to the card.", "source": "s3://data/uploads/faq.md"},
              {"text": "Shipping is free over $50.", "source": "s3://data/uploads/shipping.md"}),
    prompt_id="rag-answer", prompt_version=3, model="llmops-dev-llm",
)


def test_every_value_is_escaped_by_the_liquid_render():
    page = render(REVIEW)
    assert "<script>document.body" not in page and "&lt;script&gt;" in page
    assert "Refunds take 5 business days &amp; are paid" in page  # escaped once, not twice
    for value in ("rag-answer", "llmops-dev-llm", "s3://data/uploads/faq.md", "q-0001"):
        assert value in page


def _dump_dom(path):
    # --no-sandbox: CI runs as root. No network here: the crowd elements script fails to load, which
    # is the offline case the page must survive.
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by `make test` (apt-get install chromium)")
def test_the_page_shows_every_field_and_control_and_runs_no_injected_script(tmp_path):
    page = tmp_path / "review.html"
    page.write_text(render(REVIEW), encoding="utf-8")
    dom = _dump_dom(page)
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]  # neither the script nor onerror ran
    text = html.unescape(dom)
    assert ATTACK in text  # shown as text, verbatim
    for expected in ("How long do refunds take?", "Refunds take five days [1].", "Refunds take 5 business days & are paid",
                     "Shipping is free over $50.", "s3://data/uploads/shipping.md", "rag-answer", "llmops-dev-llm"):
        assert expected in text, expected
    for control in ('name="rating" value="1"', 'name="rating" value="5"', 'name="unsupported_claim"', 'name="wrong_citation"',
                    'name="harmful_content"', 'name="unhelpful_refusal"', 'name="off_topic"', 'name="corrected_answer"'):
        assert control in dom, control
