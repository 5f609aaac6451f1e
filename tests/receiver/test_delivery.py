"""Parsing a verified body into a Delivery: the prediction's fields, and a clear 400 for unusable bodies."""

from __future__ import annotations

import hashlib
import json

import pytest

from receiver.delivery import decode_json, encode_compact, parse
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
    assert decode_json(delivery.fields["outputs"]) == ["https://cdn.example.com/p1/output.mp4"]
    assert decode_json(delivery.fields["has_nsfw_contents"]) == [False]
    assert decode_json(delivery.fields["timings"]) == {"inference": 41234}
    assert decode_json(delivery.fields["input"])["duration"] == 5
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
