"""Property-based fuzzing of ``POST /webhooks/wavespeed``: never a 5xx, and nothing unsigned is ever stored."""

from __future__ import annotations

import dataclasses
import json
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from receiver.correlation import make_token
from receiver.http.app import create_app
from receiver.settings import Secret, Settings
from tests.conftest import SECRET
from tests.support import direct, prediction_body, sign

NOW = 1_790_000_000
TOLERANCE = 300
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
HEX = "0123456789abcdef"
FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclasses.dataclass(frozen=True)
class Attempt:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    signed: bool  # the three headers are exactly a valid signature over this id, timestamp and body
    fresh: bool  # ...and the id is well formed and the timestamp within tolerance
    prediction: bool  # the body is a well-formed prediction


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One receiver per ledger backend for all examples (a fresh ledger per example would dominate the run)."""
    directory = tmp_path_factory.mktemp("fuzz")
    db = str(directory / "wavehook.db")
    if request.param == "postgresql":
        db = request.getfixturevalue("postgres_databases").create()
    app_settings = Settings(webhook_secrets=(Secret(SECRET),), db=db, media_dir=directory / "media")
    with (
        TestClient(create_app(app_settings, clock=lambda: float(NOW)), raise_server_exceptions=False) as test_client,
        direct(db) as ledger,
    ):
        test_client.ledger = ledger  # type: ignore[attr-defined]
        yield test_client


def counts(client: TestClient) -> dict[str, int]:
    conn = client.ledger  # type: ignore[attr-defined]
    return {
        table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608 (fixed names)
        for table in ("events", "predictions", "handler_runs", "quarantine")
    }


header_text = st.text(st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=80)
often = st.integers(0, 3).map(bool)  # true three times in four
good_ids = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
objects_with_id = st.fixed_dictionaries(
    {"id": st.one_of(st.text(max_size=20), st.integers(), st.none(), json_values)},
    optional={"status": json_values, "model": json_values, "error": json_values, "outputs": json_values},
)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A body and whether it is a well-formed prediction."""
    kind = draw(st.sampled_from(["prediction"] * 3 + ["object", "json", "bytes"]))
    if kind == "prediction":
        status = draw(st.sampled_from(["completed", "failed", "processing", "created", "cancelled", "timeout"]))
        return prediction_body(draw(good_ids), status=status), True
    if kind == "object":
        return json.dumps(draw(objects_with_id)).encode(), False
    if kind == "json":
        return json.dumps(draw(json_values)).encode(), False
    return draw(st.binary(max_size=300)), False


@st.composite
def signatures(draw: st.DrawFn, webhook_id: str, timestamp: str, body: bytes) -> tuple[str, bool]:
    """A webhook-signature value, and whether it holds a valid v3 signature of exactly these bytes."""
    valid = sign(SECRET, webhook_id, timestamp, body)
    digest = valid.removeprefix("v3,")
    kind = draw(
        st.sampled_from(["valid"] * 3 + ["valid-after-junk", "flipped", "truncated", "scheme", "other", "text"])
    )
    if kind == "valid":
        return valid, True
    if kind == "valid-after-junk":
        return f"v3,{draw(st.text(HEX, min_size=64, max_size=64))} {valid}", True
    if kind == "flipped":
        index = draw(st.integers(0, 63))
        other = draw(st.sampled_from([c for c in HEX if c != digest[index]]))
        return f"v3,{digest[:index]}{other}{digest[index + 1 :]}", False
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid) - 1))], False
    if kind == "scheme":
        return f"{draw(st.sampled_from(['v1', 'v2', 'V3', 'v4', 'sha256']))},{digest}", False
    if kind == "other":
        return sign("whsec_another-secret", webhook_id, timestamp, body), False
    return draw(header_text), False


@st.composite
def attempts(draw: st.DrawFn) -> Attempt:
    """A delivery built from parts, some valid and some not, then perhaps damaged header by header."""
    body, prediction = draw(bodies())
    id_ok = draw(often)
    webhook_id = draw(good_ids) if id_ok else draw(header_text)
    offset = draw(st.integers(-TOLERANCE, TOLERANCE) if draw(often) else st.integers(-(10**12), 10**12))
    ts_ok = abs(offset) <= TOLERANCE
    timestamp = str(NOW + offset) if draw(often) else draw(header_text)
    ts_ok = ts_ok and timestamp == str(NOW + offset)
    signature, signed = draw(signatures(webhook_id, timestamp, body))
    values: dict[str, bytes | None] = {
        "webhook-id": webhook_id.encode("latin-1"),
        "webhook-timestamp": timestamp.encode("latin-1"),
        "webhook-signature": signature.encode("latin-1"),
    }
    for name in draw(st.sets(st.sampled_from(HEADERS), max_size=1 if draw(often) else 3)):  # drop or replace
        replacement = draw(st.one_of(st.none(), st.binary(max_size=80)))
        signed = signed and replacement == values[name]
        values[name] = replacement
    length = None if draw(often) else draw(header_text)  # what Content-Length claims, if not the truth
    if length is not None:
        values["content-length"] = length.encode("latin-1")
        prediction = prediction and length.strip().lstrip("0") == str(len(body))
    headers = [(name.encode(), value) for name, value in values.items() if value is not None]
    return Attempt(headers, body, signed, signed and id_ok and ts_ok, prediction)


@FUZZ
@given(attempts())
def test_fuzzed_delivery_is_answered_without_5xx_and_stored_only_if_signed(
    client: TestClient, attempt: Attempt
) -> None:
    """Whatever the headers and body, the answer is below 500, and only a valid signature can add an event."""
    before = counts(client)
    response = client.post("/webhooks/wavespeed", content=attempt.body, headers=attempt.headers)
    after = counts(client)
    event(f"{response.status_code} {response.json().get('reason', 'accepted')}")  # --hypothesis-show-statistics
    assert response.status_code < 500, response.text
    if not attempt.signed:
        # 401, unless a cheaper check of the declared length refused the request first
        assert response.json()["reason"] in {"bad_content_length", "body_too_large"} or response.status_code == 401
        assert after == before  # nothing at all is written for unsigned input, not even quarantine
    elif attempt.fresh and attempt.prediction:
        assert response.status_code == 200, response.text
    if response.status_code != 200:
        assert {k: after[k] for k in ("events", "predictions", "handler_runs")} == {
            k: before[k] for k in ("events", "predictions", "handler_runs")
        }
    else:
        assert attempt.signed
        data: Any = json.loads(attempt.body)
        assert isinstance(data, dict)
        assert isinstance(data["id"], str)


@FUZZ
@given(
    body=bodies(),
    webhook_id=good_ids,
    ref=st.one_of(st.none(), st.text(max_size=140)),
    token=st.one_of(st.none(), st.just("correct"), st.text(max_size=40)),
)
def test_fuzzed_signed_body_and_query_never_fail_the_server(
    client: TestClient, body: tuple[bytes, bool], webhook_id: str, ref: str | None, token: str | None
) -> None:
    """A validly signed, fresh delivery with any body and any ref/token gets 200, 400 or 401, never a 5xx."""
    raw, prediction = body
    if token == "correct":
        token = make_token(client.app.state.receiver.correlation_secret, ref or "")  # type: ignore[attr-defined]
    params = {name: value for name, value in (("ref", ref), ("token", token)) if value is not None}
    before = counts(client)
    response = client.post(
        "/webhooks/wavespeed",
        params=params,
        content=raw,
        headers={
            "webhook-id": webhook_id,
            "webhook-timestamp": str(NOW),
            "webhook-signature": sign(SECRET, webhook_id, str(NOW), raw),
        },
    )
    after = counts(client)
    event(f"{response.status_code} {response.json().get('reason', 'accepted')}")
    assert response.status_code in {200, 400, 401}, response.text
    if prediction and not params:
        assert response.status_code == 200, response.text
    if response.status_code != 200:
        assert (after["events"], after["predictions"]) == (before["events"], before["predictions"])
