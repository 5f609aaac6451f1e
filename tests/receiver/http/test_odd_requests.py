"""Odd inputs to the authenticated routes (non-ASCII digits, integers past SQLite's 64 bits, non-ASCII
credentials) get a 4xx naming what is wrong, never a 500."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from receiver.http.auth import COOKIE_NAME
from receiver.settings import Secret, Settings
from tests.receiver.web_support import csrf_token, web_client

HUGE = "9" * 30  # past SQLite's 64-bit integers
GETS = [
    "/api/predictions?limit=²",
    "/api/predictions?limit=" + HUGE,
    "/api/predictions?cursor=nan:x",
    "/api/predictions?since=²",
    "/api/runs?limit=²",
    "/api/runs?cursor=²",
    "/api/runs?cursor=" + HUGE,
    "/api/runs/²",
    "/api/runs/" + HUGE,
    "/media/" + HUGE,
    "/media/²",
]
POSTS = [
    "/api/runs/²/replay",
    f"/api/runs/{HUGE}/replay",
    "/api/runs/replay-dead?since=²",
    "/api/runs/replay-dead?dry_run=²",
]


@pytest.mark.parametrize("path", GETS)
def test_odd_query_and_path_values_are_4xx(settings_factory: Callable[..., Settings], path: str) -> None:
    """Each odd value is answered 400 or 404 with a JSON error, not 500."""
    with web_client(settings_factory()) as client:
        response = client.get(path)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]


@pytest.mark.parametrize("path", POSTS)
def test_odd_replay_requests_are_4xx(settings_factory: Callable[..., Settings], path: str) -> None:
    """Replays with odd ids or parameters, with a valid CSRF token, are answered 4xx, not 500."""
    with web_client(settings_factory()) as client:
        token = csrf_token(client.get("/").text)
        response = client.post(path, headers={"x-csrf-token": token, "sec-fetch-site": "same-origin"})
    assert 400 <= response.status_code < 500, response.text


def test_a_non_ascii_csrf_token_is_403(settings_factory: Callable[..., Settings]) -> None:
    """An X-CSRF-Token holding non-ASCII text is a mismatch (403), not a comparison that raises."""
    with web_client(settings_factory()) as client:
        response = client.post(
            "/api/runs/replay-dead", headers={"x-csrf-token": "é".encode(), "sec-fetch-site": "same-origin"}
        )
    assert (response.status_code, response.json()["reason"]) == (403, "csrf_token_mismatch")


def test_a_non_ascii_cookie_signature_is_a_login_required(settings_factory: Callable[..., Settings]) -> None:
    """A session cookie whose signature part is not ASCII is simply not a session."""
    settings = settings_factory(admin_token=Secret("admin-token-for-tests-0123456789"))
    with web_client(settings) as client:
        response = client.get("/api/summary", headers={"cookie": f"{COOKIE_NAME}=abc.1900000000.é".encode()})
    assert (response.status_code, response.json()["reason"]) == (401, "login_required")
