"""The Ground Truth worker templates escape document text: a document cannot inject HTML."""

from __future__ import annotations

import json
import re

import liquid
import pytest

from lambdas.runtime.data_prep.ground_truth import TEMPLATES

ATTACK = '</classification-target><script>alert("x")</script><img src=x onerror=alert(1)> & "quoted"'
# What each task shows: (template variable, task input field).
SHOWN = {"text-classification": "taskObject", "named-entity-recognition": "taskObject", "question-answer": "text"}
CROWD_JS = '<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>'


def render(task_type: str, text: str) -> str:
    env = liquid.Environment()
    env.filters["to_json"] = json.dumps  # Ground Truth's own filter
    task_input = {SHOWN[task_type]: text, "labels": ["A", "<b>B</b>"]}
    return env.from_string(TEMPLATES[task_type]).render(task={"input": task_input})


@pytest.mark.parametrize("task_type", sorted(TEMPLATES))
def test_document_text_is_escaped(task_type: str) -> None:
    page = render(task_type, ATTACK)
    assert page.count("<script") == 1 and CROWD_JS in page, "only the crowd elements script may be on the page"
    assert "<img" not in page and 'alert("x")' not in page
    assert "&lt;script&gt;" in page and "&amp;" in page
    assert "<b>B</b>" not in page  # labels too


@pytest.mark.parametrize("task_type", sorted(TEMPLATES))
def test_every_output_of_task_input_is_escaped(task_type: str) -> None:
    # A new template must not print task input raw: every {{ task.input.* }} ends in escape.
    for expression in re.findall(r"{{(.*?)}}", TEMPLATES[task_type]):
        if "task.input" in expression:
            assert expression.strip().endswith("| escape"), f"{task_type}: {{{{{expression}}}}} is not escaped"
