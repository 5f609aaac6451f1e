"""Submit faults against real processes: an answer lost after the sandbox created the task is resolved by a
lookup (no second task); a refused connection is retried and then reported; a forged delivery with a wrong
token is refused by the real receiver even though its signature is genuine."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from receiver.settings import Secret, Settings, SubmitSettings
from submitter import Submitter
from submitter.errors import ProviderUnavailable
from tests.conftest import SECRET
from tests.integration.submitter_support import Loop
from tests.support import free_port, prediction_body, signed_headers

pytestmark = [pytest.mark.integration, pytest.mark.fault]
T2V = "bytedance/seedance-v1-lite-t2v-480p"


class LoseFirstSubmitAnswer(httpx.AsyncBaseTransport):
    """The network between us and the sandbox: the first submit reaches it and is handled, then the
    connection drops before its answer is read (what a read timeout looks like from the client)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.submits = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.startswith("/api/v3/bytedance/"):
            self.submits += 1
            if self.submits == 1:
                await response.aread()
                await response.aclose()
                raise httpx.ReadTimeout("the answer never came", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_lost_answer_resolved_without_a_second_task(loop: Loop) -> None:
    """The sandbox holds exactly one task; the submission is tied to it by lookup, and its webhook (carrying
    our reference) completes the same ledger row."""
    transport = LoseFirstSubmitAnswer()
    with Submitter(loop.settings, transport=transport) as sub:
        result = sub.submit(T2V, {"prompt": "a fox whose answer is lost"})
        state = sub.submission(result.reference)
    assert result.outcome == "resolved"
    assert transport.submits == 1
    assert loop.sandbox_status()["tasks"] == 1
    assert state is not None
    assert (state["state"], state["resolved_by"], state["prediction_id"]) == (
        "submitted",
        "lookup",
        result.prediction_id,
    )
    (row,) = loop.wait_final(1)
    assert (row["id"], row["reference"]) == (result.prediction_id, result.reference)


def test_refused_connection_retried_then_reported(settings_factory: Callable[..., Settings]) -> None:
    """Nobody listens at the base URL: the submit is tried again with backoff, then fails clearly; the
    submission is recorded as failed (nothing can have been created)."""
    dead = f"http://127.0.0.1:{free_port()}"
    settings = settings_factory(
        api_key=Secret("k"),
        base_url=dead,
        public_url="http://127.0.0.1:9",
        submit=SubmitSettings(retries=2, backoff_seconds=0.01),
    )
    with Submitter(settings) as sub, pytest.raises(ProviderUnavailable, match=f"no answer from {dead}") as info:
        sub.submit(T2V, {"prompt": "x"})
    assert "ConnectError" in str(info.value)
    conn = sqlite3.connect(settings.db_path)
    assert conn.execute("SELECT state, attempts FROM submissions").fetchall() == [("failed", 1)]
    conn.close()


def _with_token(url: str, token: str | None) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "token"] + ([("token", token)] if token else [])
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_forged_delivery_with_wrong_token_refused(loop: Loop) -> None:
    """A delivery for our job signed with the (leaked) provider secret but without the right token is refused
    (401) and stored nowhere; the genuine URL is accepted, and so is a delivery without any reference."""
    with Submitter(loop.settings) as sub:
        result = sub.submit(T2V, {"prompt": "a fox [sandbox:drop]"})
    assert result.webhook_url is not None
    body = prediction_body(str(result.prediction_id), "completed", model=T2V)
    for token in ("0" * 32, None):
        forged = httpx.post(
            _with_token(result.webhook_url, token), content=body, headers=signed_headers(SECRET, body, webhook_id="f1")
        )
        assert forged.status_code == 401
        assert forged.json()["reason"] == "token_mismatch"
    assert loop.rows("SELECT id FROM events") == []
    assert loop.rows("SELECT status FROM predictions") == [{"status": "created"}]
    genuine = httpx.post(result.webhook_url, content=body, headers=signed_headers(SECRET, body, webhook_id="g1"))
    assert genuine.status_code == 200
    (event,) = loop.rows("SELECT reference FROM events")
    assert event["reference"] == result.reference
    other = prediction_body("from-another-tool", "completed")
    plain = f"{loop.receiver.url}/webhooks/wavespeed"  # type: ignore[attr-defined]
    assert httpx.post(plain, content=other, headers=signed_headers(SECRET, other, webhook_id="o1")).status_code == 200
    assert {r["id"]: r["status"] for r in loop.rows("SELECT id, status FROM predictions")} == {
        result.prediction_id: "completed",
        "from-another-tool": "completed",
    }


def test_our_jobs_refuse_a_plain_or_borrowed_webhook_url(loop: Loop) -> None:
    """With the provider secret alone, a delivery for one of our jobs sent to the plain URL, or with another
    job's genuine ref and token, is refused (401 token_mismatch), kept in quarantine, and applies nothing."""
    with Submitter(loop.settings) as sub:
        first = sub.submit(T2V, {"prompt": "a fox [sandbox:drop]"})
        second = sub.submit(T2V, {"prompt": "a hare [sandbox:drop]"})
    assert first.webhook_url is not None
    plain = f"{loop.receiver.url}/webhooks/wavespeed"  # type: ignore[attr-defined]
    attempts = [(plain, first.prediction_id, "plain"), (first.webhook_url, second.prediction_id, "borrowed")]
    for url, prediction_id, webhook_id in attempts:
        body = prediction_body(str(prediction_id), "completed", model=T2V)
        forged = httpx.post(url, content=body, headers=signed_headers(SECRET, body, webhook_id=webhook_id))
        assert (forged.status_code, forged.json()["reason"]) == (401, "token_mismatch"), webhook_id
    assert loop.rows("SELECT id FROM events") == []
    assert loop.rows("SELECT DISTINCT status FROM predictions") == [{"status": "created"}]
    assert loop.rows("SELECT id FROM handler_runs") == []
    kept = loop.rows("SELECT webhook_id, reason FROM quarantine ORDER BY webhook_id")
    assert kept == [
        {"webhook_id": "borrowed", "reason": "token_mismatch"},
        {"webhook_id": "plain", "reason": "token_mismatch"},
    ]
