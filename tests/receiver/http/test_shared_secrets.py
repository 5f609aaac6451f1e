"""Shared secrets: two instances on one ledger accept each other's job tokens and logins, on both backends;
WAVEHOOK_CORRELATION_SECRET keeps tokens of jobs in flight valid on a replaced disk and through a rotation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from receiver import correlation
from receiver.errors import TokenMismatch
from receiver.http.auth import COOKIE_NAME
from receiver.settings import Secret, Settings
from tests.receiver.web_support import web_client
from tests.support import prediction_body, signed_headers

TOKEN = "admin-token-for-tests-0123456789"
OUTSIDE = ("203.0.113.7", 40000)


def deliver_for_job(client: TestClient, secret: str, reference: str, token: str) -> int:
    body = prediction_body(f"task-{reference}", "completed")
    now = int(client.app.state.receiver.clock())  # type: ignore[attr-defined]
    headers = signed_headers(secret, body, webhook_id=f"wh-{reference}-{token[:6]}", timestamp=now)
    answer = client.post(f"/webhooks/wavespeed?ref={reference}&token={token}", content=body, headers=headers)
    return answer.status_code


def test_rotation_signs_with_the_first_and_accepts_every_secret_and_the_ledgers() -> None:
    """Keys.of: the first configured secret makes tokens; tokens of every configured one and of the
    ledger's own are accepted; others are refused."""
    keys = correlation.Keys.of(["new", "old"], "ledger")
    assert keys.signing == "new"
    for secret in ("new", "old", "ledger"):
        assert correlation.check(keys.accepted, "r1", correlation.make_token(secret, "r1")) == "r1"
    with pytest.raises(TokenMismatch):
        correlation.check(keys.accepted, "r1", correlation.make_token("stranger", "r1"))
    assert correlation.Keys.of([], "ledger") == correlation.Keys("ledger", ("ledger",))


def test_two_instances_on_one_ledger_accept_each_others_tokens_and_logins(
    ledger_settings: Callable[..., Settings], secret: str
) -> None:
    """A job token made by one instance is accepted by the other, and a login on one is a login on both:
    both secrets come from the shared ledger, on SQLite and on PostgreSQL alike."""
    settings = ledger_settings(admin_token=Secret(TOKEN))
    with (
        web_client(settings, client=OUTSIDE, base_url="https://a.example") as one,
        web_client(settings, client=OUTSIDE, base_url="https://a.example") as two,
    ):
        token = correlation.make_token(one.app.state.receiver.correlation_secret, "job-1")  # type: ignore[attr-defined]
        assert deliver_for_job(two, secret, "job-1", token) == 200
        login = one.post(
            "/login",
            content=f"token={TOKEN}&next=/",
            headers={"content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin"},
        )
        assert login.status_code == 303
        cookie = one.cookies.get(COOKIE_NAME)
        assert cookie
        two.cookies.set(COOKIE_NAME, cookie, domain="a.example")
        assert two.get("/api/predictions").status_code == 200
        two.cookies.clear()
        assert two.get("/api/predictions").status_code == 401


def test_a_configured_secret_keeps_tokens_valid_on_a_fresh_ledger(
    settings_factory: Callable[..., Settings], secret: str, tmp_path: Path
) -> None:
    """Tokens made under WAVEHOOK_CORRELATION_SECRET are accepted by an instance on a new, empty ledger (a
    replaced disk) given the same variable, and refused by one without it."""
    configured = (Secret("shared-correlation-secret-0123456789"),)
    first = settings_factory(db=str(tmp_path / "first.db"), correlation_secrets=configured)
    with web_client(first) as before:
        token = correlation.make_token(before.app.state.receiver.correlation_secret, "job-2")  # type: ignore[attr-defined]
        assert before.app.state.receiver.correlation_secret == configured[0].reveal()  # type: ignore[attr-defined]
    replaced = settings_factory(db=str(tmp_path / "replaced.db"), correlation_secrets=configured)
    with web_client(replaced) as after:
        assert deliver_for_job(after, secret, "job-2", token) == 200
    with web_client(settings_factory(db=str(tmp_path / "bare.db"))) as without:
        assert deliver_for_job(without, secret, "job-2", token) == 401
