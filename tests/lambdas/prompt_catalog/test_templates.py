"""Write-time validation of prompt content and rendering with LangChain templates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.runtime.prompt_catalog.errors import ContentTooLarge, PromptValidationError, RenderVariablesError
from lambdas.runtime.prompt_catalog.model import MAX_CONTENT_BYTES, parse_content
from lambdas.runtime.prompt_catalog.templates import coerce_variable, render_content, template_problems, validate_content

from .conftest import TEXT_CONTENT

FEW_SHOT = {
    "technique": "few-shot",
    "prefix": "Classify the sentiment of {product} reviews.",
    "example_template": "Review: {review}\nLabel: {label}",
    "examples": [{"review": "Great", "label": "positive"}, {"review": "Broken", "label": "negative"}],
    "template": "Review: {review}\nLabel:",
    "variables": {"product": {}, "review": {}},
}
CHAT = {
    "kind": "chat",
    "technique": "chain-of-thought",
    "messages": [{"role": "system", "content": "Think in {steps} steps."}, {"role": "user", "content": "{question}"}],
    "variables": {"steps": {"type": "integer"}, "question": {}},
}


def problems_of(data: dict) -> list[str]:
    try:
        content = parse_content(data)
    except PromptValidationError as err:
        return [str(p) for p in err.problems]
    return [str(p) for p in template_problems(content)]


@pytest.mark.parametrize("data", [TEXT_CONTENT, FEW_SHOT, CHAT], ids=["text", "few-shot", "chat"])
def test_valid_contents_have_no_problems(data):
    assert problems_of(data) == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({**TEXT_CONTENT, "template": "Answer {question"}, "template: template does not parse"),
        ({**TEXT_CONTENT, "template": "{question} {context} {extra}"}, "variables: template uses undeclared variable(s): extra"),
        ({**TEXT_CONTENT, "template": "{question}"}, "variables: declared but not used by the template: context"),
        ({**TEXT_CONTENT, "template": "{question} {context} {}"}, "placeholders must be named identifiers"),
        ({**TEXT_CONTENT, "technique": "tree-of-thought"}, "technique: got 'tree-of-thought'; allowed: 'zero-shot', 'few-shot' or 'chain-of-thought'"),
        ({**TEXT_CONTENT, "variables": {"question": {"type": "text"}, "context": {}}}, "variables.question.type: got 'text'"),
        ({**TEXT_CONTENT, "temperature": 0.3}, "temperature: unknown field"),
        ({**TEXT_CONTENT, "model_parameters": {"temperature": 3}}, "model_parameters.temperature"),
        ({**TEXT_CONTENT, "template": None}, "template: required when kind is 'text'"),
        ({**TEXT_CONTENT, "examples": [{"a": "b"}]}, "technique: examples, example_template and prefix are only used by few-shot"),
        ({**FEW_SHOT, "examples": [{"review": "x", "label": "y"}, {"review": "z"}]}, "examples.1: missing key(s) used by example_template: label"),
        ({**FEW_SHOT, "examples": [{"review": "x", "label": "y", "note": "n"}]}, "examples.0: key(s) not used by example_template: note"),
        # FewShotPromptTemplate formats the joined text again: braces inside an example break it.
        ({**FEW_SHOT, "examples": [{"review": 'JSON {"a": 1}', "label": "y"}]}, "examples: trial render failed"),
        ({**FEW_SHOT, "examples": []}, "examples: few-shot needs at least one example"),
        ({**CHAT, "technique": "few-shot", "examples": [{"a": "b"}], "example_template": "{a}"}, "technique: few-shot needs kind 'text'"),
        ({**CHAT, "messages": [{"role": "robot", "content": "{steps}{question}"}]}, "messages.0.role"),
        ({**CHAT, "messages": [{"role": "system", "content": "{steps:d} {question}"}]}, "template: trial render failed"),
    ],
)
def test_invalid_content_is_rejected_naming_the_field(data, expected):
    problems = problems_of(data)
    assert any(expected in p for p in problems), problems


def test_oversized_content_is_rejected_with_the_limit():
    content = parse_content({**TEXT_CONTENT, "template": "{question} {context}" + "x" * MAX_CONTENT_BYTES})
    with pytest.raises(ContentTooLarge, match=f"limit is {MAX_CONTENT_BYTES} bytes") as info:
        validate_content(content)
    assert info.value.status == 413


def test_render_names_missing_extra_and_mistyped_variables():
    content = parse_content(CHAT)
    with pytest.raises(RenderVariablesError) as info:
        render_content(content, {"steps": "three", "topic": "x"})
    err = info.value
    assert err.missing == ["question"] and err.extra == ["topic"]
    assert "missing variable(s): question" in str(err)
    assert "unexpected variable(s): topic" in str(err)
    assert "variables.steps: expected integer, got str" in str(err)
    assert err.status == 400


def test_chat_render_returns_text_and_messages():
    text, messages = render_content(parse_content(CHAT), {"steps": 3, "question": "Why?"})
    assert text == "System: Think in 3 steps.\nHuman: Why?"
    assert messages == ({"role": "system", "content": "Think in 3 steps."}, {"role": "human", "content": "Why?"})


def test_few_shot_render_places_examples_between_prefix_and_template():
    text, _ = render_content(parse_content(FEW_SHOT), {"product": "kettle", "review": "Leaks"})
    assert text == (
        "Classify the sentiment of kettle reviews.\n\nReview: Great\nLabel: positive\n\n"
        "Review: Broken\nLabel: negative\n\nReview: Leaks\nLabel:"
    )


def test_content_hash_ignores_key_order_and_tracks_changes():
    a = parse_content(TEXT_CONTENT)
    b = parse_content(dict(reversed(list(TEXT_CONTENT.items()))))
    c = parse_content({**TEXT_CONTENT, "template": "Answer {question} from {context}."})
    assert a.content_hash() == b.content_hash()
    assert a.content_hash() != c.content_hash()


@pytest.mark.parametrize(
    ("raw", "kind", "value"),
    [("3", "integer", 3), ("2.5", "number", 2.5), ("true", "boolean", True), ('["a"]', "list", ["a"]), ('{"k": 1}', "object", {"k": 1})],
)
def test_cli_strings_coerce_to_declared_types(raw, kind, value):
    content = parse_content({"template": "{v}", "variables": {"v": {"type": kind}}})
    assert coerce_variable(content, "v", raw) == value


def test_cli_string_of_the_wrong_type_names_the_variable():
    content = parse_content({"template": "{v}", "variables": {"v": {"type": "integer"}}})
    with pytest.raises(PromptValidationError, match="variables.v: cannot read 'three' as integer"):
        coerce_variable(content, "v", "three")


@settings(max_examples=200, deadline=None)
@given(question=st.text(), context=st.text())
def test_variable_values_are_inserted_verbatim_never_parsed(question, context):
    # Braces in user input must not be treated as template syntax (prompt-template injection).
    text, _ = render_content(parse_content(TEXT_CONTENT), {"question": question, "context": context})
    assert text == f"Answer {question} using {context}."


NAMES = ("question", "context", "topic")
literal = st.text(max_size=15).map(lambda s: s.replace("{", "{{").replace("}", "}}"))
placeholder = st.sampled_from(NAMES).flatmap(lambda n: st.sampled_from([f"{{{n}}}", f"{{{n}!r}}", f"{{{n}:>6}}"]))
template_text = st.lists(st.one_of(literal, placeholder), min_size=1, max_size=6).map("".join)


def _declared(*texts: str) -> dict:
    return {n: {} for n in NAMES if any(f"{{{n}" in t for t in texts)}


@st.composite
def contents(draw):
    kind = draw(st.sampled_from(["text", "chat", "few-shot"]))
    if kind == "chat":
        messages = draw(st.lists(st.tuples(st.sampled_from(["system", "user", "assistant", "human", "ai"]), template_text), min_size=1, max_size=3))
        texts = [t for _, t in messages]
        return {"kind": "chat", "messages": [{"role": r, "content": t} for r, t in messages], "variables": _declared(*texts)}
    template = draw(template_text)
    if kind == "text":
        return {"template": template, "variables": _declared(template)}
    prefix = draw(st.one_of(st.just(""), template_text))
    examples = draw(st.lists(st.fixed_dictionaries({"q": st.text(max_size=8), "a": st.text(max_size=8)}), min_size=1, max_size=3))
    separator = draw(st.sampled_from(["\n\n", "\n", " | "]))
    return {
        "technique": "few-shot", "prefix": prefix, "template": template, "example_template": "Q: {q} A: {a}",
        "examples": examples, "example_separator": separator, "variables": _declared(prefix, template),
    }


@settings(max_examples=300, deadline=None)
@given(data=contents(), values=st.fixed_dictionaries({n: st.text(max_size=12) for n in NAMES}))
def test_runtime_renderer_matches_langchain(data, values):
    from hypothesis import assume

    from lambdas.runtime.prompt_catalog.templates import langchain_render

    try:
        content = parse_content(data)
    except PromptValidationError:
        assume(False)
    assume(not template_problems(content))
    chosen = {n: values[n] for n in content.variables}
    assert render_content(content, chosen) == langchain_render(content, chosen)
