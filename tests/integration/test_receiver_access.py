"""Access to the dashboard and API of a real ``wavehook serve`` with an admin token: the login form's size cap,
throttled guesses, logout, and start-up refusals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.receiver_client import Server, raw_exchange, serve

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
