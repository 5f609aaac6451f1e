"""Signed but odd deliveries: refused at ingest with their reason (and kept), and no stored row, however odd,
takes a page, the API or the dispatcher down."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from receiver.settings import Settings
from tests.conftest import SECRET
from tests.integration.receiver_client import query
from tests.receiver.web_support import Clock, failing_handlers, web_client
from tests.support import direct, signed_headers, wait_for

NOW = 1_800_000_000
ODD = {
    "nan-inference": (b'{"id":"p","status":"completed","timings":{"inference":NaN}}', "invalid_number", "timings"),
    "infinite-inference": (
        b'{"id":"p","status":"completed","timings":{"inference":1e999}}',
        "invalid_number",
        "timings",
    ),
    "lone-surrogate-input": (b'{"id":"p","status":"completed","input":{"prompt":"\\ud800"}}', "invalid_text", "input"),
    "outputs-a-number": (b'{"id":"p","status":"completed","outputs":5}', "invalid_field", "outputs"),
    "outputs-of-objects": (b'{"id":"p","status":"completed","outputs":[{}]}', "invalid_field", "outputs"),
    "400-digit-integer": (
        b'{"id":"p","status":"completed","timings":{"inference":' + b"9" * 400 + b"}}",
        "invalid_number",
        "timings",
    ),
    "nsfw-a-number": (b'{"id":"p","status":"completed","has_nsfw_contents":5}', "invalid_field", "has_nsfw_contents"),
    "timings-a-string": (b'{"id":"p","status":"completed","timings":"abc"}', "invalid_field", "timings"),
}
# What an older version stored from those bodies: every reader must still cope with such rows.
LEGACY_COLUMNS = [
    {"timings": '{"inference":NaN}'},
    {"timings": '{"inference":Infinity}'},
    {"input": '{"prompt":"\\ud800"}'},
    {"outputs": "5"},
    {"outputs": "[{}]"},
    {"timings": '{"inference":' + "9" * 400 + "}"},
    {"has_nsfw_contents": "5"},
    {"timings": '"abc"'},
    {"outputs": "not json at all"},
]


def routes(prediction_id: str) -> list[str]:
    """Every page and JSON route that reads the ledger, for one prediction."""
    quoted = quote(prediction_id, safe="")
    return [
        "/",
        "/dead",
        "/fragments/index",
        "/fragments/dead",
        "/api/predictions",
        "/api/summary",
        "/api/runs",
        "/metrics",
        f"/predictions/{quoted}",
        f"/fragments/predictions/{quoted}",
        f"/api/predictions/{quoted}",
        f"/api/runs?prediction_id={quoted}",
    ]


def failing_routes(client: TestClient, prediction_id: str) -> dict[str, int]:
    answers = {path: client.get(path).status_code for path in routes(prediction_id)}
    return {path: status for path, status in answers.items() if status >= 500}


def post(client: TestClient, body: bytes, webhook_id: str) -> Any:
    headers = signed_headers(SECRET, body, webhook_id=webhook_id, timestamp=NOW)
    return client.post("/webhooks/wavespeed", content=body, headers=headers)


@pytest.fixture
def client(backend: str, settings_factory: Callable[..., Settings]) -> Iterator[TestClient]:
    """An in-process receiver on a ledger of each backend in turn, its handlers failing."""
    settings = settings_factory()
    with web_client(settings, clock=Clock(NOW), handlers=failing_handlers(settings)) as test_client:
        yield test_client


def ledger(client: TestClient, sql: str) -> list[tuple[Any, ...]]:
    return query(client.app.state.receiver.settings.db, sql)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("body", "reason", "field"), ODD.values(), ids=ODD.keys())
def test_an_odd_signed_body_is_refused_and_quarantined(
    client: TestClient, body: bytes, reason: str, field: str
) -> None:
    """400 naming the field and its fault, the body kept in quarantine with that reason, nothing applied."""
    response = post(client, body, "odd")
    assert (response.status_code, response.json()["reason"]) == (400, reason)
    assert field in response.json()["error"]
    assert ledger(client, "SELECT reason, prediction_id FROM quarantine") == [(reason, "p")]
    assert ledger(client, "SELECT count(*) FROM events") == [(0,)]
    assert failing_routes(client, "p") == {}


@pytest.mark.usefixtures("backend")  # each ledger backend in turn
def test_rows_stored_by_an_older_version_break_no_reader(settings_factory: Callable[..., Settings]) -> None:
    """Predictions whose columns hold what ingest now refuses: every page and API route answers, and the
    dispatcher finishes their handler runs instead of leaving them running."""
    settings = settings_factory()
    with web_client(settings, clock=Clock(NOW), handlers=failing_handlers(settings)) as client:
        for index, columns in enumerate(LEGACY_COLUMNS):
            post(client, json.dumps({"id": f"legacy-{index}", "status": "completed"}).encode(), f"w{index}")
            assignments = ", ".join(f"{name} = ?" for name in columns)
            with contextlib.closing(direct(settings.db)) as conn:
                conn.execute(
                    f"UPDATE predictions SET {assignments} WHERE id = ?",  # noqa: S608 (test column names)
                    [*columns.values(), f"legacy-{index}"],
                )
        finished = "SELECT count(*) FROM handler_runs WHERE state = 'dead'"
        wait_for(lambda: ledger(client, finished) == [(len(LEGACY_COLUMNS),)], what="every run to end")
        for index in range(len(LEGACY_COLUMNS)):
            assert failing_routes(client, f"legacy-{index}") == {}, LEGACY_COLUMNS[index]
        listed = client.get("/api/predictions").json()["predictions"]
        assert len(listed) == len(LEGACY_COLUMNS)
        assert all(isinstance(row["outputs"], list | None) for row in listed)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
FIELDS = ("status", "model", "input", "outputs", "has_nsfw_contents", "timings", "error", "created_at", "urls")
PREDICTIONS = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=12)},
    optional=dict.fromkeys(FIELDS, JSON_VALUES),
)


@pytest.mark.usefixtures("backend")  # each ledger backend in turn (PostgreSQL text holds no NUL, SQLite's does)
def test_any_signed_object_with_a_string_id_leaves_every_route_answering(
    settings_factory: Callable[..., Settings],
) -> None:
    """Property: whatever a signed JSON object with a string id holds, the delivery is answered 200 or 400 and
    afterwards every page and API route answers 2xx or 4xx."""
    settings = settings_factory()
    with web_client(settings, clock=Clock(NOW), handlers=failing_handlers(settings)) as client:
        count = iter(range(10**9))

        @hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(prediction=PREDICTIONS)
        def check(prediction: dict[str, Any]) -> None:
            body = json.dumps(prediction).encode()
            answer = post(client, body, f"prop-{next(count)}")
            assert answer.status_code in (200, 400), answer.text
            assert failing_routes(client, prediction["id"]) == {}

        check()
