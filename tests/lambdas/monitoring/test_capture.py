"""Data capture and interaction lines: three request shapes, both encodings, every bad line with a reason."""

from __future__ import annotations

import base64
import json

import pytest

from lambdas.runtime.monitoring.capture import Parsed, Rejected, parse_lines


def capture_line(request, response, *, encoding="JSON", event_id="e-1"):
    def part(payload, mode):
        data = json.dumps(payload)
        if encoding == "BASE64":
            data = base64.b64encode(data.encode()).decode()
        return {"observedContentType": "application/json", "mode": mode, "data": data, "encoding": encoding}

    return json.dumps({"captureData": {"endpointInput": part(request, "INPUT"), "endpointOutput": part(response, "OUTPUT")},
                       "eventMetadata": {"eventId": event_id, "inferenceTime": "2026-12-02T10:00:00Z"}, "eventVersion": "0"})


SHAPES = {
    "tgi": ({"inputs": "What is PSI?", "parameters": {"max_new_tokens": 64}}, [{"generated_text": "A drift index."}],
            "What is PSI?", None, {}),
    "lmi": ({"inputs": "What is PSI?", "parameters": {"max_new_tokens": 64}}, {"generated_text": "A drift index."},
            "What is PSI?", None, {}),
    "lmi-prompt": ({"prompt": "What is PSI?"}, {"choices": [{"text": "A drift index."}]}, "What is PSI?", None, {}),
    "messages": ({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is PSI?"}]},
                 {"choices": [{"message": {"role": "assistant", "content": "A drift index."}}],
                  "usage": {"prompt_tokens": 12, "completion_tokens": 4}},
                 "system: Be brief.\nuser: What is PSI?", "What is PSI?", {"prompt_tokens": 12, "response_tokens": 4}),
}


@pytest.mark.parametrize("encoding", ["JSON", "BASE64"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_capture_shapes_and_encodings(shape, encoding):
    request, response, prompt, question, usage = SHAPES[shape]
    [item] = list(parse_lines([capture_line(request, response, encoding=encoding)]))
    assert isinstance(item, Parsed), item
    assert item.record.prompt == prompt
    assert item.record.response == "A drift index."
    assert item.record.question == question
    assert item.record_id == "e-1"
    assert item.record.metadata["inferenceTime"] == "2026-12-02T10:00:00Z"
    for key, value in usage.items():
        assert item.record.metadata[key] == value


def test_interaction_records_and_bytes_lines():
    lines = [json.dumps({"prompt": "p", "response": "r", "contexts": ["c"], "metadata": {"id": "q-1"}}).encode(), b"",
             json.dumps({"prompt": "p2", "response": "r2"})]
    items = list(parse_lines(lines))
    assert [type(i) for i in items] == [Parsed, Parsed]
    assert items[0].record.contexts == ("c",) and items[0].record_id == "q-1"
    assert items[1].line == 3  # numbering counts blank lines, so it matches the file


BAD = [
    ("not json", "not JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"prompt": "p"}', "missing 'response'"),
    ('{"response": "r"}', "missing 'prompt'"),
    ('{"prompt": 3, "response": "r"}', "'prompt' must be a string, got int"),
    ('{"prompt": "p", "response": "r", "contexts": "c"}', "'contexts' must be a list of strings"),
    (b'{"prompt": "caf\xe9", "response": "r"}', "not UTF-8 (byte 15: b'\\xe9')"),
    ('{"captureData": {"endpointInput": {"data": "{}", "encoding": "JSON"}, '
     '"endpointOutput": {"data": "[]", "encoding": "JSON"}}}', "endpointInput has none of 'inputs'"),
    ('{"captureData": {"endpointInput": {"data": "%%%", "encoding": "BASE64"}, '
     '"endpointOutput": {"data": "[]", "encoding": "JSON"}}}', "captureData.endpointInput.data is not base64"),
    ('{"captureData": {"endpointInput": {"data": "{\\"inputs\\": \\"x\\"}", "encoding": "JSON"}, '
     '"endpointOutput": {"data": "{\\"oops\\": 1}", "encoding": "JSON"}}}', "endpointOutput has no 'generated_text'"),
    ('{"captureData": {"endpointInput": {"data": "{}", "encoding": "GZIP"}, "endpointOutput": {}}}',
     "encoding must be JSON or BASE64"),
    ('{"captureData": {"endpointInput": {"data": "{\\"inputs\\": [\\"a\\", \\"b\\"]}"}, '
     '"endpointOutput": {"data": "[]"}}}', "one prompt per request"),
]


@pytest.mark.parametrize(("line", "reason"), BAD)
def test_bad_lines_rejected_with_reason_and_line_number(line, reason):
    good = json.dumps({"prompt": "p", "response": "r"})
    items = list(parse_lines([good, line, good]))
    assert [type(i) for i in items] == [Parsed, Rejected, Parsed]
    assert items[1].line == 2
    assert reason in items[1].reason, items[1].reason
    assert str(items[1]).startswith("line 2: ")
