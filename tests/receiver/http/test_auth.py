"""Access control: loopback-only without a token; bearer or login cookie with one; CSRF-safe replays."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from receiver.errors import ConfigError
from receiver.http.auth import COOKIE_NAME, SESSION_SECONDS, Sessions, is_loopback
from receiver.settings import Secret, Settings
from tests.receiver.web_support import BASE, Clock, csrf_token, deliver, failing_handlers, web_client
from tests.support import wait_for

# Runs on every ledger backend (SQLite, PostgreSQL): see ``settings_factory``.
pytestmark = pytest.mark.usefixtures("backend")

TOKEN = "admin-token-for-tests-0123456789"
OUTSIDE = ("203.0.113.7", 40000)


def error(response: object) -> tuple[int, str]:
    return response.status_code, response.json()["reason"]  # type: ignore[attr-defined]


@pytest.fixture
def token_settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(admin_token=Secret(TOKEN))


@pytest.fixture
def token_client(token_settings: Settings) -> Iterator[TestClient]:
    with web_client(token_settings, client=OUTSIDE, base_url="https://wavehook.example.org") as client:
        yield client


def login(client: TestClient, token: str = TOKEN, next_path: str = "/") -> object:
    return client.post(
        "/login",
        content=f"token={token}&next={next_path}",
        headers={"content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin"},
    )


# -- sessions -------------------------------------------------------------------------------------------------


def test_session_cookie_round_trips_and_rejects_tampering() -> None:
    """A cookie the key signed verifies; any change to it, or another key, does not."""
    sessions = Sessions(b"k" * 32)
    cookie = sessions.issue()
    assert sessions.verify(cookie) is not None
    session_id, expires, signature = cookie.split(".")
    assert sessions.verify(f"{session_id}x.{expires}.{signature}") is None
    assert sessions.verify(f"{session_id}.{int(expires) + 1}.{signature}") is None
    assert sessions.verify(cookie + "0") is None
    assert Sessions(b"j" * 32).verify(cookie) is None
    for junk in ("", "a.b", "a.b.c.d", None):
        assert sessions.verify(junk) is None


def test_session_cookie_expires() -> None:
    """A session cookie stops working once its lifetime has passed."""
    clock = Clock()
    sessions = Sessions(b"k" * 32, clock=clock)
    cookie = sessions.issue()
    clock.now += SESSION_SECONDS + 1
    assert sessions.verify(cookie) is None


def test_changing_the_admin_token_ends_every_session() -> None:
    """The session key depends on the admin token: a new token invalidates old cookies."""
    old = Sessions.for_ledger("ledger-secret", Secret("one"), clock=Clock())
    new = Sessions.for_ledger("ledger-secret", Secret("two"), clock=Clock())
    assert new.verify(old.issue()) is None


def test_loopback_addresses() -> None:
    """127.0.0.0/8, ::1 and IPv4-mapped loopback count as loopback; anything else does not."""
    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]))
    assert not any(map(is_loopback, ["10.0.0.1", "192.168.1.2", "::", "testclient", "", None]))


# -- without a token: loopback only ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/api/predictions", "/api/summary", "/metrics", "/dead"])
def test_without_token_other_clients_are_refused(settings_factory: Callable[..., Settings], path: str) -> None:
    """Without WAVEHOOK_ADMIN_TOKEN a non-loopback client gets 403 loopback_only from the page, API and metrics."""
    with web_client(settings_factory(), client=OUTSIDE) as client:
        assert error(client.get(path)) == (403, "loopback_only")


def test_without_token_loopback_clients_are_served(settings_factory: Callable[..., Settings], secret: str) -> None:
    """A loopback client reaches the page, the API and the metrics without credentials."""
    with web_client(settings_factory()) as client:
        deliver(client, secret, "p1")
        assert client.get("/").status_code == 200
        assert client.get("/api/predictions").json()["predictions"][0]["id"] == "p1"
        assert client.get("/metrics").status_code == 200


def test_without_token_a_foreign_host_name_is_refused(settings_factory: Callable[..., Settings]) -> None:
    """A loopback connection naming another host (DNS rebinding) is refused."""
    with web_client(settings_factory(), base_url="http://attacker.example:8000") as client:
        assert error(client.get("/api/predictions")) == (403, "host_not_loopback")
    with web_client(settings_factory(), base_url="http://localhost:8000") as client:
        assert client.get("/api/predictions").status_code == 200


def test_public_paths_need_nothing(token_client: TestClient, secret: str) -> None:
    """The webhook, health checks, static files and the login form answer any client, token or not."""
    deliver(token_client, secret, "p1")
    assert token_client.get("/healthz").status_code == 200
    assert token_client.get("/readyz").status_code == 200
    assert token_client.get("/static/app.css").status_code == 200
    assert token_client.get("/login").status_code == 200


# -- with a token ---------------------------------------------------------------------------------------------


def test_api_needs_the_bearer_token(token_client: TestClient) -> None:
    """With a token set, /api and /metrics answer 401 without it or with a wrong one, and 200 with it."""
    missing = token_client.get("/api/predictions")
    assert error(missing) == (401, "login_required")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert error(token_client.get("/metrics")) == (401, "login_required")
    wrong = token_client.get("/api/predictions", headers={"Authorization": "Bearer nope"})
    assert error(wrong) == (401, "bad_token")
    assert TOKEN not in wrong.text
    assert error(token_client.get("/api/predictions", headers={"Authorization": f"Basic {TOKEN}"})) == (
        401,
        "bad_token",
    )
    ok = token_client.get("/api/predictions", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200


def test_page_without_login_redirects_to_the_login_form(token_client: TestClient) -> None:
    """An anonymous page request is sent to /login, remembering where it was going."""
    response = token_client.get("/predictions/p1")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/predictions/p1"


def test_login_sets_a_secure_http_only_strict_cookie(token_client: TestClient) -> None:
    """The right token sets a signed session cookie (Secure on https, HttpOnly, SameSite=Strict) without the token."""
    response = login(token_client, next_path="/dead")
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"] == "/dead"  # type: ignore[attr-defined]
    cookie = response.headers["set-cookie"]  # type: ignore[attr-defined]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert flag.lower() in cookie.lower()
    assert TOKEN not in cookie
    assert token_client.get("/").status_code == 200
    assert token_client.get("/api/summary").status_code == 200


def test_login_over_plain_http_sets_no_secure_flag(token_settings: Settings) -> None:
    """Over http (a loopback test setup) the cookie cannot be Secure, or the browser would drop it."""
    with web_client(token_settings, base_url=BASE) as client:
        cookie = login(client).headers["set-cookie"]  # type: ignore[attr-defined]
        assert "secure" not in cookie.lower()


def test_wrong_token_shows_the_form_again(token_client: TestClient) -> None:
    """A wrong token answers 401 with the form and an error, and sets no cookie."""
    response = login(token_client, token="guess")
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert "not the admin token" in response.text  # type: ignore[attr-defined]
    assert "set-cookie" not in response.headers  # type: ignore[attr-defined]
    assert token_client.get("/").status_code == 303


def test_login_never_redirects_off_site(token_client: TestClient) -> None:
    """``next`` pointing at another site falls back to /."""
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        assert login(token_client, next_path=evil).headers["location"] == "/"  # type: ignore[attr-defined]


def test_cross_site_login_is_refused(token_client: TestClient) -> None:
    """A login form posted from another site is refused (login CSRF)."""
    response = token_client.post(
        "/login",
        content=f"token={TOKEN}",
        headers={"content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "cross-site"},
    )
    assert error(response) == (403, "cross_site_request")


def test_logout_needs_the_csrf_token_and_clears_the_cookie(token_client: TestClient) -> None:
    """POST /logout with the page's CSRF token clears the cookie; without it, it is refused."""
    login(token_client)
    token = csrf_token(token_client.get("/").text)
    assert error(token_client.post("/logout", headers={"sec-fetch-site": "same-origin"})) == (
        403,
        "csrf_token_mismatch",
    )
    response = token_client.post("/logout", headers={"sec-fetch-site": "same-origin", "x-csrf-token": token})
    assert response.status_code == 204
    assert 'wavehook_session=""' in response.headers["set-cookie"]


def test_logout_revokes_the_session_on_the_server(token_settings: Settings) -> None:
    """A cookie kept after logout (copied, stolen, or a browser that ignored the deletion) no longer works, in this
    app or in another process on the same ledger; other sessions stay valid."""
    with web_client(token_settings, client=OUTSIDE, base_url="https://wavehook.example.org") as client:
        login(client)
        kept = client.cookies[COOKIE_NAME]
        other = TestClient(client.app, client=OUTSIDE, base_url="https://wavehook.example.org")
        login(other)
        token = csrf_token(client.get("/").text)
        assert (
            client.post("/logout", headers={"sec-fetch-site": "same-origin", "x-csrf-token": token}).status_code == 204
        )
        client.cookies.set(COOKIE_NAME, kept)
        assert error(client.get("/api/summary")) == (401, "login_required")
        assert client.get("/").status_code == 303  # to the login form
        assert other.get("/api/summary").status_code == 200
    with web_client(token_settings, client=OUTSIDE, base_url="https://wavehook.example.org") as restarted:
        restarted.cookies.set(COOKIE_NAME, kept)
        assert error(restarted.get("/api/summary")) == (401, "login_required")


# -- CSRF on replay -------------------------------------------------------------------------------------------


@pytest.fixture
def dead_run_client(token_settings: Settings, secret: str) -> Iterator[TestClient]:
    """A token-protected app whose one handler run is dead."""
    handlers = failing_handlers(token_settings)
    with web_client(token_settings, handlers=handlers, base_url="https://h.example") as client:
        deliver(client, secret, "p1")
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        wait_for(
            lambda: client.get("/api/runs?state=dead", headers=bearer).json()["runs"],
            what="the run to die",
        )
        yield client


def replay(client: TestClient, **headers: str) -> object:
    return client.post("/api/runs/replay-dead", headers=headers)


def test_replay_with_cookie_needs_csrf_token_and_same_origin(dead_run_client: TestClient) -> None:
    """With a session cookie, a replay without the CSRF token or from another site is refused; with both, it runs."""
    login(dead_run_client)
    token = csrf_token(dead_run_client.get("/dead").text)
    assert error(replay(dead_run_client)) == (403, "csrf_token_mismatch")
    assert error(replay(dead_run_client, **{"x-csrf-token": "0" * 64})) == (403, "csrf_token_mismatch")
    assert error(replay(dead_run_client, **{"x-csrf-token": token, "sec-fetch-site": "cross-site"})) == (
        403,
        "cross_site_request",
    )
    assert error(replay(dead_run_client, **{"x-csrf-token": token, "origin": "https://evil.example"})) == (
        403,
        "cross_site_request",
    )
    ok = replay(dead_run_client, **{"x-csrf-token": token, "sec-fetch-site": "same-origin"})
    assert ok.status_code == 200, ok.text  # type: ignore[attr-defined]


def test_replay_with_bearer_needs_no_csrf_token(dead_run_client: TestClient) -> None:
    """A bearer header is never sent by a browser on its own, so it alone authorizes a replay."""
    response = replay(dead_run_client, Authorization=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]


def test_replay_without_token_is_csrf_checked_for_loopback_clients(
    settings_factory: Callable[..., Settings],
) -> None:
    """Without a token, a loopback replay still needs the page's CSRF token: another site's page cannot replay."""
    with web_client(settings_factory()) as client:
        token = csrf_token(client.get("/").text)
        assert error(replay(client)) == (403, "csrf_token_mismatch")
        assert error(replay(client, **{"x-csrf-token": token, "sec-fetch-site": "cross-site"})) == (
            403,
            "cross_site_request",
        )
        assert replay(client, **{"x-csrf-token": token, "origin": BASE}).status_code == 200  # type: ignore[attr-defined]


# -- guessing -------------------------------------------------------------------------------------------------


def test_wrong_bearer_tokens_are_throttled_per_client(token_settings: Settings) -> None:
    """After 5 wrong bearer tokens in a minute a client gets 429 with Retry-After, even with the right token;
    other clients are not affected, and the client is let in again once the minute has passed."""
    clock = Clock()
    with web_client(token_settings, clock=clock, client=OUTSIDE) as guesser:
        other = TestClient(guesser.app, client=("198.51.100.9", 1), base_url=BASE)  # the same app, started
        for attempt in range(5):
            answer = guesser.get("/api/summary", headers={"authorization": f"Bearer wrong-{attempt}"})
            assert error(answer) == (401, "bad_token")
        refused = guesser.get("/api/summary", headers={"authorization": f"Bearer {TOKEN}"})
        assert error(refused) == (429, "too_many_attempts")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert other.get("/api/summary", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        clock.now += 61
        assert guesser.get("/api/summary", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_wrong_logins_are_throttled(token_settings: Settings) -> None:
    """After 5 failed logins in a minute the form answers 429 with Retry-After, even for the right token."""
    with web_client(token_settings, client=OUTSIDE) as client:
        for attempt in range(5):
            assert login(client, token=f"wrong-{attempt}").status_code == 401  # type: ignore[attr-defined]
        refused = login(client)
        assert refused.status_code == 429  # type: ignore[attr-defined]
        assert int(refused.headers["retry-after"]) >= 1  # type: ignore[attr-defined]
        assert "Too many" in refused.text  # type: ignore[attr-defined]


@pytest.mark.parametrize("token", ["a", "short-token", "x" * 23])
def test_a_short_admin_token_is_refused_with_how_to_make_one(token: str) -> None:
    """WAVEHOOK_ADMIN_TOKEN under 24 characters stops the start, and the message says how to make a good one."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"WAVEHOOK_ADMIN_TOKEN": token})
    assert "at least 24 characters" in str(info.value)
    assert "secrets.token_urlsafe(32)" in str(info.value)
    assert "short-token" not in str(info.value)  # never echoed
