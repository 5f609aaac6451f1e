"""Access to the dashboard and API of a real ``wavehook serve`` with an admin token: the login form's size cap,
throttled guesses, logout, and start-up refusals."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import serve_process
from tests.integration.receiver_client import Server, raw_exchange, serve
from tests.support import free_port, running, wait_for

pytestmark = pytest.mark.integration
TOKEN = "an-admin-token-long-enough-for-the-minimum-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("access"), env={"WAVEHOOK_ADMIN_TOKEN": TOKEN}) as running_server:
        yield running_server


def test_a_login_declaring_a_huge_body_is_refused_before_reading(server: Server) -> None:
    """Content-Length of 64 MiB and no body sent: 413 at once, from the header alone."""
    head = b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    answer = raw_exchange(server.port, head + b"Content-Length: 67108864\r\n\r\n", timeout=5)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"reason":"body_too_large"' in answer


def test_a_streamed_login_body_is_refused_past_the_cap(server: Server) -> None:
    """A chunked form that passes 4 KiB is refused with 413 without waiting for its end."""
    head = b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n%s\r\n" % (8192, b"t" * 8192)
    answer = raw_exchange(server.port, head + chunk, timeout=5)
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_serve_refuses_a_short_admin_token_and_says_how_to_make_one(tmp_path: Path) -> None:
    """`wavehook serve` with WAVEHOOK_ADMIN_TOKEN=a exits 2 before listening, naming the minimum and a recipe."""
    process = serve_process(tmp_path, free_port(), env={"WAVEHOOK_ADMIN_TOKEN": "a"})
    result = subprocess.run(process.args, env=process.env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "WAVEHOOK_ADMIN_TOKEN" in result.stderr
    assert "at least 24 characters" in result.stderr
    assert "secrets.token_urlsafe(32)" in result.stderr


def test_the_access_log_masks_correlation_tokens(tmp_path: Path) -> None:
    """`serve --access-log` writes each request line with its token parameter masked."""
    port = free_port()
    process = serve_process(tmp_path, port)
    process.args.append("--access-log")
    with running(process, f"http://127.0.0.1:{port}/healthz"):
        httpx.post(f"http://127.0.0.1:{port}/webhooks/wavespeed?ref=wh_1&token=tok0secret0value", content=b"{}")
        wait_for(lambda: "/webhooks/wavespeed?ref=wh_1&token=[redacted]" in process.log(), what="the access line")
    assert "tok0secret0value" not in process.log()


def test_bearer_guesses_get_429_with_retry_after(server: Server) -> None:
    """Wrong bearer tokens from one client: 401 five times, then 429 with Retry-After, even for the right one."""
    with httpx.Client(base_url=server.url, timeout=5) as client:
        answers = [client.get("/api/summary", headers={"authorization": f"Bearer guess-{n}"}) for n in range(5)]
        assert [answer.status_code for answer in answers] == [401] * 5
        refused = client.get("/api/summary", headers={"authorization": f"Bearer {TOKEN}"})
    assert (refused.status_code, refused.json()["reason"]) == (429, "too_many_attempts")
    assert int(refused.headers["retry-after"]) >= 1


def test_serve_beyond_loopback_without_a_token_needs_an_explicit_opt_in(tmp_path: Path) -> None:
    """`serve --host 0.0.0.0` without WAVEHOOK_ADMIN_TOKEN exits 2 saying what to set; with the opt-in it starts
    (and its dashboard still answers loopback clients only)."""
    port = free_port()
    refused = serve_process(tmp_path, port)
    refused.args += ["--host", "0.0.0.0"]
    result = subprocess.run(refused.args, env=refused.env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "WAVEHOOK_ADMIN_TOKEN" in result.stderr
    assert "WAVEHOOK_ALLOW_NO_ADMIN_TOKEN" in result.stderr
    allowed = serve_process(tmp_path, port, env={"WAVEHOOK_ALLOW_NO_ADMIN_TOKEN": "true"})
    allowed.args += ["--host", "0.0.0.0"]
    with running(allowed, f"http://127.0.0.1:{port}/healthz"):
        assert httpx.get(f"http://127.0.0.1:{port}/api/summary", timeout=5).status_code == 200
