"""Parsing a verified body into a Delivery: the prediction's fields, and a clear 400 for unusable bodies."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.delivery import encode_compact, parse
from receiver.errors import BadRequest
from tests.support import prediction_body


def test_parse_reads_the_prediction_fields() -> None:
    """A provider body yields id, model, status and JSON-encoded columns, hashed over the raw bytes."""
    body = prediction_body("p1", "completed")
    delivery = parse(body, webhook_id="w1", webhook_timestamp=1_800_000_000)
    assert (delivery.prediction_id, delivery.status, delivery.model) == (
        "p1",
        "completed",
        "bytedance/seedance-v1-lite-t2v-480p",
    )
    assert delivery.body == body
    assert delivery.body_sha256 == hashlib.sha256(body).hexdigest()
    assert json.loads(delivery.fields["outputs"]) == ["https://cdn.example.com/p1/output.mp4"]
    assert json.loads(delivery.fields["has_nsfw_contents"]) == [False]
    assert json.loads(delivery.fields["timings"]) == {"inference": 41234}
    assert json.loads(delivery.fields["input"])["duration"] == 5
    assert delivery.fields["error"] is None  # the provider sends "" when nothing failed
    assert delivery.fields["provider_created_at"] == "2026-11-21T10:00:00.000Z"
    assert delivery.webhook_timestamp == 1_800_000_000


def test_parse_keeps_the_error_of_a_failed_prediction() -> None:
    """A failed prediction's error text is kept."""
    delivery = parse(prediction_body("p1", "failed", error="NSFW input"), webhook_id="w1")
    assert (delivery.status, delivery.fields["error"]) == ("failed", "NSFW input")


def test_parse_tolerates_missing_and_odd_optional_fields() -> None:
    """Only id is required: a missing or non-string status/model becomes None, absent columns stay NULL."""
    delivery = parse(json.dumps({"id": "p1", "status": 7, "model": ""}).encode(), webhook_id="w1")
    assert (delivery.status, delivery.model) == (None, None)
    assert delivery.fields["outputs"] is None


@pytest.mark.parametrize(
    ("body", "reason", "words"),
    [
        (b"not json", "invalid_json", "not valid JSON"),
        (b"\xff\xfe\x00", "invalid_json", "not valid JSON"),
        (b"[1, 2]", "not_an_object", "list"),
        (b'"p1"', "not_an_object", "str"),
        (b"{}", "missing_id", '"id"'),
        (b'{"id": 42}', "missing_id", '"id"'),
        (b'{"id": "  "}', "missing_id", '"id"'),
    ],
)
def test_unusable_body_is_a_bad_request_naming_the_problem(body: bytes, reason: str, words: str) -> None:
    """A body that is not a JSON object with a string id raises a 400 whose message says what is wrong."""
    with pytest.raises(BadRequest) as caught:
        parse(body, webhook_id="w1")
    assert (caught.value.status, caught.value.reason) == (400, reason)
    assert words in caught.value.message


@pytest.mark.parametrize(
    "value",
    [
        {"prompt": 'caf\u00e9 \u4e2d \U0001f600 "q" \\ / \n', "seed": -1, "ratio": 0.1, "big": 10**40},
        ["https://cdn.example.com/a.mp4?x=1&y=<2>"],
        [False, True, None],
        {"inference": 41234, "nested": {"a": [1.5e300, -0.0, {}], "b": []}},
        "plain text",
        "\ud800 lone surrogate",
        float("nan"),
        [float("inf"), float("-inf"), 1e400],
        7,
    ],
)
def test_json_columns_are_encoded_exactly_as_json_dumps(value: object) -> None:
    """The prebuilt encoder writes the same text json.dumps with compact separators writes."""
    assert encode_compact(value) == json.dumps(value, separators=(",", ":"))


JSON_COLUMNS = ("input", "outputs", "has_nsfw_contents", "timings")


def json_columns(data: dict[str, object]) -> dict[str, str | None]:
    """The JSON columns as json.dumps writes them."""
    return {
        name: json.dumps(data[name], separators=(",", ":")) if data.get(name) is not None else None
        for name in JSON_COLUMNS
    }


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        (prediction_body("p1"), None),
        (b'{"id":"p1","input":{"seed":12345678901234567890,"n":-9223372036854775809}}', None),
        (b'{"id":"p1","input":{"seed":18446744073709551615,"f":[1e308,5e-324,0.30000000000000004,-0.0,1E5]}}', None),
        (b'{"id":"p1","urls":{"big":123456789012345678901234567890},"timings":{"inference":7}}', None),
        (b'{"id":"p1","input":{"prompt":"one e+ two","x":1e+20}}', None),
        (b'\xef\xbb\xbf{"id":"p1","outputs":["a"]}', None),
        ('{"id":"p1","input":{"prompt":"caf\u00e9"}}'.encode("utf-16"), None),
        (b'{"id":"p1","outputs":["\\ud83d\\ude00"],"outputs":["b"]}', None),
        (b'{"id":"p1","input":{"deep":' + b"[" * 300 + b"]" * 300 + b"}}", None),
        # What json.loads accepts but no JSON reader could get back out: refused, naming the field.
        (b'{"id":"p1","input":{"seed":123456789012345678901234567890}}', "invalid_number"),
        (b'{"id":"p1","input":{"v":NaN,"w":-Infinity}}', "invalid_number"),
        (b'{"id":"p1","input":{"prompt":"\\ud800"}}', "invalid_text"),
        (b'{"id":"p1","outputs":[1],"outputs":[2]}', "invalid_field"),
        (b"123456789012345678901234567890", "not_an_object"),
        (b'["p1"]', "not_an_object"),
    ],
)
def test_fast_parse_makes_exactly_what_json_makes(body: bytes, refusal: str | None) -> None:
    """Whichever parser reads a body, its columns are json.dumps of json.loads, and a refusal names its reason."""
    if refusal is not None:
        with pytest.raises(BadRequest) as caught:
            parse(body, webhook_id="w1")
        assert caught.value.reason == refusal
        if refusal == "not_an_object":
            assert f"not {type(json.loads(body)).__name__}" in caught.value.message
        return
    fields = parse(body, webhook_id="w1").fields
    assert {name: fields[name] for name in JSON_COLUMNS} == json_columns(json.loads(body))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=1 - 2**64, max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=16,
)


@settings(max_examples=300, deadline=None)
@given(given_input=JSON_VALUES, timings=JSON_VALUES, extra=JSON_VALUES, compact=st.booleans())
def test_any_json_body_gets_the_columns_json_would_write(
    given_input: object, timings: object, extra: object, compact: bool
) -> None:
    """For generated bodies (64-bit integers, odd floats, escapes), the columns are exactly json.dumps of json.loads."""
    data = {"id": "p1", "input": {"given": given_input}, "timings": {"given": timings}, "urls": extra}
    body = json.dumps(data, separators=(",", ":") if compact else None).encode()
    fields = parse(body, webhook_id="w1").fields
    assert {name: fields[name] for name in JSON_COLUMNS} == json_columns(json.loads(body))
