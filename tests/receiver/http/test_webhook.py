"""POST /webhooks/wavespeed in process: answers per the contract, what is stored, and what never is."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from httpx import Response
from starlette.testclient import TestClient

from receiver.errors import BadRequest
from receiver.http.app import create_app
from receiver.http.webhook import headers_of, read_body
from receiver.settings import Settings
from tests.postgres import make_read_only
from tests.receiver.conftest import NOW
from tests.support import direct, prediction_body, sign, signed_headers

# Runs on every ledger backend (SQLite, PostgreSQL): see ``settings_factory``.
pytestmark = pytest.mark.usefixtures("backend")

URL = "/webhooks/wavespeed"


def rows(client: TestClient, sql: str) -> list[tuple[object, ...]]:
    conn = direct(client.app.state.receiver.settings.db)  # type: ignore[attr-defined]
    try:
        return [tuple(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def post(client: TestClient, secret: str, body: bytes, *, webhook_id: str = "w1", timestamp: int = NOW) -> Response:
    headers = signed_headers(secret, body, webhook_id=webhook_id, timestamp=timestamp)
    return client.post(URL, content=body, headers=headers)


@pytest.fixture
def client(app_client: Callable[..., TestClient]) -> TestClient:
    return app_client()


def test_signed_delivery_is_accepted_and_stored(client: TestClient, secret: str) -> None:
    """A correctly signed delivery answers 200 received and is in the ledger as an event and a prediction."""
    response = post(client, secret, prediction_body("p1"))
    assert (response.status_code, response.json()) == (200, {"received": True, "duplicate": False})
    assert rows(client, "SELECT webhook_id, prediction_id, status FROM events") == [("w1", "p1", "completed")]
    assert rows(client, "SELECT id, status FROM predictions") == [("p1", "completed")]


def test_repeat_is_answered_as_duplicate_and_stored_once(client: TestClient, secret: str) -> None:
    """The same delivery again answers 200 with duplicate true and adds no event."""
    body = prediction_body("p1")
    post(client, secret, body)
    response = post(client, secret, body, timestamp=NOW + 5)  # a retry is signed anew
    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": True}
    assert rows(client, "SELECT count(*), sum(duplicates) FROM events") == [(1, 1)]


def test_same_webhook_id_with_other_body_is_kept_as_conflict(client: TestClient, secret: str) -> None:
    """A second body under the same webhook-id is not a duplicate: it is stored, flagged conflict."""
    post(client, secret, prediction_body("p1", "processing"), webhook_id="p1")
    response = post(client, secret, prediction_body("p1", "completed"), webhook_id="p1")
    assert response.json() == {"received": True, "duplicate": False}
    assert rows(client, "SELECT status, conflict FROM events ORDER BY id") == [("processing", 0), ("completed", 1)]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-id": None}, "missing_header"),
        ({"webhook-timestamp": None}, "missing_header"),
        ({"webhook-signature": None}, "missing_header"),
        ({"webhook-signature": "v3,zz"}, "malformed_header"),
        ({"webhook-signature": "v1,c2lnbmF0dXJl"}, "unsupported_scheme"),
        ({"webhook-signature": "v3," + "ab" * 32}, "signature_mismatch"),
        ({"webhook-timestamp": "1.8e9"}, "invalid_timestamp"),
    ],
)
def test_unverifiable_delivery_is_401_and_not_stored(
    client: TestClient, secret: str, change: dict[str, str | None], reason: str
) -> None:
    """Each way a signature can fail answers 401 naming the reason; nothing at all is stored."""
    body = prediction_body("p1")
    headers = signed_headers(secret, body, webhook_id="w1", timestamp=NOW)
    expected_signature = headers["webhook-signature"]
    for name, value in change.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 401
    assert set(response.json()) == {"error", "reason"}
    assert response.json()["reason"] == reason
    for leaked in (secret, secret.removeprefix("whsec_"), expected_signature.removeprefix("v3,")):
        assert leaked not in response.text
    assert rows(client, "SELECT count(*) FROM events") == [(0,)]
    assert rows(client, "SELECT count(*) FROM quarantine") == [(0,)]
    assert rows(client, "SELECT count(*) FROM predictions") == [(0,)]


@pytest.mark.parametrize(("offset", "reason"), [(-301, "stale_timestamp"), (301, "future_timestamp")])
def test_authentic_but_untimely_delivery_is_401_and_quarantined(
    client: TestClient, secret: str, offset: int, reason: str
) -> None:
    """A genuine delivery outside the tolerance answers 401 and is kept in quarantine, not as an event."""
    body = prediction_body("p1")
    response = post(client, secret, body, timestamp=NOW + offset)
    assert (response.status_code, response.json()["reason"]) == (401, reason)
    assert rows(client, "SELECT count(*) FROM events") == [(0,)]
    assert rows(client, "SELECT webhook_id, reason, prediction_id, webhook_timestamp, body FROM quarantine") == [
        ("w1", reason, "p1", NOW + offset, body)
    ]


@pytest.mark.parametrize(
    ("body", "reason"), [(b"{not json", "invalid_json"), (b"[]", "not_an_object"), (b'{"status": "x"}', "missing_id")]
)
def test_signed_but_unusable_body_is_400_and_quarantined(
    client: TestClient, secret: str, body: bytes, reason: str
) -> None:
    """A signed body that is not a prediction answers 400 naming the problem; the raw body is kept."""
    response = post(client, secret, body)
    assert (response.status_code, response.json()["reason"]) == (400, reason)
    assert rows(client, "SELECT reason, body FROM quarantine") == [(reason, body)]
    assert rows(client, "SELECT count(*) FROM events") == [(0,)]


def test_unsigned_garbage_is_401_not_400(client: TestClient) -> None:
    """The signature is checked before the body is looked at: unsigned garbage is never quarantined."""
    response = client.post(URL, content=b"{not json")
    assert response.status_code == 401
    assert rows(client, "SELECT count(*) FROM quarantine") == [(0,)]


def test_declared_oversized_body_is_413_and_closes(app_client: Callable[..., TestClient], secret: str) -> None:
    """A Content-Length over the limit answers 413 naming the limit, and closes the connection."""
    client = app_client(max_body_bytes=2048)
    body = prediction_body("p1", prompt="x" * 3000)
    response = post(client, secret, body)
    assert response.status_code == 413
    assert response.json()["reason"] == "body_too_large"
    assert "2048" in response.json()["error"]
    assert response.headers["connection"] == "close"
    assert rows(client, "SELECT count(*) FROM events") == [(0,)]


def test_streamed_oversized_body_is_413(app_client: Callable[..., TestClient], secret: str) -> None:
    """A chunked body without Content-Length is cut off with 413 once it passes the limit."""
    client = app_client(max_body_bytes=2048)
    body = prediction_body("p1", prompt="x" * 3000)
    headers = signed_headers(secret, body, webhook_id="w1", timestamp=NOW)
    response = client.post(URL, content=iter([body[:1500], body[1500:]]), headers=headers)
    assert response.status_code == 413
    assert response.headers["connection"] == "close"


def test_body_exactly_at_the_limit_is_accepted(app_client: Callable[..., TestClient], secret: str) -> None:
    """The limit is inclusive: a body of exactly max_body_bytes is read and accepted."""
    body = prediction_body("p1")
    client = app_client(max_body_bytes=max(len(body), 1024))
    body = body + b" " * (max(len(body), 1024) - len(body))
    assert post(client, secret, body).status_code == 200


def test_rotation_accepts_both_secrets(app_client: Callable[..., TestClient], secret: str) -> None:
    """With two secrets configured, deliveries signed by either are accepted."""
    from receiver.settings import Secret

    other = "whsec_bmV3LXNlY3JldC1hZnRlci1yb3RhdGlvbg"
    client = app_client(webhook_secrets=(Secret(secret), Secret(other)))
    assert post(client, secret, prediction_body("p1"), webhook_id="a").status_code == 200
    assert post(client, other, prediction_body("p2"), webhook_id="b").status_code == 200


def stop_writes(client: TestClient) -> None:
    """Make the ledger refuse every write of the app's writer, as a read-only database does."""
    state = client.app.state.receiver  # type: ignore[attr-defined]
    if "://" in state.settings.db:
        make_read_only(state.settings.db)
        return
    state.ledger.writer.run_sync(lambda conn: conn.execute("PRAGMA query_only = ON"), 10)


def test_storage_failure_answers_503_never_200(client: TestClient, secret: str) -> None:
    """When the database refuses the write the answer is 503 (the provider retries) and no event exists."""
    stop_writes(client)
    response = post(client, secret, prediction_body("p1"))
    assert (response.status_code, response.json()["reason"]) == (503, "storage_unavailable")
    assert rows(client, "SELECT count(*) FROM events") == [(0,)]


def test_untimely_delivery_that_cannot_be_quarantined_answers_503(client: TestClient, secret: str) -> None:
    """If a refused but authentic body cannot be kept, the answer is 503 so the provider sends it again."""
    stop_writes(client)
    response = post(client, secret, prediction_body("p1"), timestamp=NOW - 1000)
    assert response.status_code == 503
    response = post(client, secret, b"[]")
    assert response.status_code == 503


def test_signature_is_checked_against_the_bytes_as_sent(client: TestClient, secret: str) -> None:
    """A body re-serialised after signing (same JSON, other bytes) is refused."""
    body = prediction_body("p1")
    headers = {
        "webhook-id": "w1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": sign(secret, "w1", NOW, body),
    }
    response = client.post(URL, content=body.replace(b", ", b","), headers=headers)
    assert response.json()["reason"] == "signature_mismatch"


def messages(*items: dict[str, object]) -> Callable[[], Awaitable[dict[str, object]]]:
    """An ASGI ``receive`` that hands out ``items`` in order."""
    queue = list(items)

    async def receive() -> dict[str, object]:
        return queue.pop(0)

    return receive


@pytest.mark.anyio
async def test_body_read_in_chunks_is_joined_and_a_disconnect_is_a_bad_request() -> None:
    """The body's chunks are joined in order; a disconnect before the last one is a 400 client_disconnected."""
    chunks = messages(
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"cd"},
    )
    assert await read_body(chunks, "4", 4) == b"abcd"
    cut = messages({"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"})
    with pytest.raises(BadRequest) as caught:
        await read_body(cut, None, 100)
    assert caught.value.reason == "client_disconnected"


def test_repeated_header_is_read_from_its_first_occurrence() -> None:
    """Of a header sent twice, the first value counts, as Starlette's Headers.get reads it."""
    assert headers_of([(b"webhook-id", b"first"), (b"host", b"x"), (b"webhook-id", b"second")])["webhook-id"] == "first"


def test_an_unexpected_failure_answers_the_json_500(settings_factory: Callable[..., Settings], secret: str) -> None:
    """A bug behind the webhook's fast path still answers 500 in the one error shape, never a bare crash."""

    def broken_route(_model: str | None, _status: str) -> tuple[str, ...]:
        raise ZeroDivisionError("a handler router bug")

    app = create_app(settings_factory(), clock=lambda: NOW, route=broken_route)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = post(client, secret, prediction_body("p1", "completed"))
        assert (response.status_code, response.json()["reason"]) == (500, "internal_error")
        assert post(client, secret, prediction_body("p2", "processing"), webhook_id="w2").status_code == 200


def test_a_nul_character_in_a_text_field_is_stored_not_refused(client: TestClient, secret: str) -> None:
    """A signed body whose id, model and error carry ``\\u0000`` is accepted on every backend (PostgreSQL
    text cannot hold NUL: it is stored as U+FFFD there); the body itself is kept byte for byte."""
    body = prediction_body("p\u0000nul", "failed", model="m\u0000x", error="bad\u0000thing")
    response = post(client, secret, body, webhook_id="w-nul")
    assert response.status_code == 200, response.text
    assert len(rows(client, "SELECT id FROM predictions")) == 1
    assert rows(client, "SELECT body FROM events") == [(body,)]
