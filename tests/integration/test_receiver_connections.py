"""Connections against a real ``wavehook serve``: deadlines for idle, slow-header and slow-body clients, a header
size cap, a connection cap answered with a clear 503, and the descriptor limit raised at start."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import serve_process
from tests.integration.receiver_client import Server, query, raw_exchange, serve
from tests.support import Process, free_port, running, wait_for

pytestmark = pytest.mark.integration
DEADLINES = {"WAVEHOOK_HEADER_TIMEOUT_SECONDS": "1", "WAVEHOOK_BODY_TIMEOUT_SECONDS": "1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("deadlines"), env=DEADLINES) as running_server:
        yield running_server


def answer(raw: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    """An idle connection is closed at the header deadline (nothing to answer), not held open forever."""
    assert raw_exchange(server.port, b"", timeout=10) == b""
    wait_for(lambda: "connection_timed_out" in server.process.log(), what="the timeout's log line")


def test_headers_sent_too_slowly_get_408(server: Server) -> None:
    """Headers still incomplete at the deadline: 408 request_timeout naming the headers, and the close."""
    status, body = answer(raw_exchange(server.port, b"POST /webhooks/wavespeed HTTP/1.1\r\nHost: x\r\n", timeout=10))
    assert (status, body["reason"]) == (408, "request_timeout")
    assert "headers" in str(body["error"])


def test_a_body_sent_too_slowly_gets_408_and_stores_nothing(server: Server) -> None:
    """A body still incomplete at its deadline: 408 naming the body, the connection closed, nothing stored."""
    head = (
        b"POST /webhooks/wavespeed HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nwebhook-id: slow-body\r\n"
        b"webhook-timestamp: 1\r\nwebhook-signature: v3,00\r\n\r\n"
    )
    status, body = answer(raw_exchange(server.port, head + b'{"id": "slo', timeout=10))
    assert (status, body["reason"]) == (408, "request_timeout")
    assert "body" in str(body["error"])
    assert query(server.db, "SELECT count(*) FROM quarantine") == [(0,)]
    assert query(server.db, "SELECT count(*) FROM events") == [(0,)]


def test_oversized_headers_get_431(server: Server) -> None:
    """More than WAVEHOOK_MAX_HEADER_BYTES (64 KiB) of request line and headers: 431, and the close."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"x-pad: " + b"a" * 70_000 + b"\r\n\r\n"
    status, body = answer(raw_exchange(server.port, request, timeout=10))
    assert (status, body["reason"]) == (431, "headers_too_large")


def test_keep_alive_requests_still_work(server: Server) -> None:
    """The deadlines are per request: one connection serves requests spread over more than a deadline."""
    with httpx.Client(base_url=server.url, timeout=5) as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200


def test_past_the_connection_cap_the_answer_is_a_json_503(tmp_path: Path) -> None:
    """With WAVEHOOK_MAX_CONNECTIONS=4 and four idle connections open, a request gets 503 too_many_connections
    with Retry-After; once they are closed, requests are served again."""
    with serve(tmp_path, env={"WAVEHOOK_MAX_CONNECTIONS": "4", "WAVEHOOK_HEADER_TIMEOUT_SECONDS": "60"}) as server:
        with contextlib.ExitStack() as stack:
            for _ in range(4):
                stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
            response = httpx.get(server.url + "/healthz", timeout=5)
            assert (response.status_code, response.json()["reason"]) == (503, "too_many_connections")
            assert response.headers["retry-after"] == "1"
            assert "WAVEHOOK_MAX_CONNECTIONS" in response.json()["error"]
        wait_for(lambda: httpx.get(server.url + "/healthz", timeout=5).status_code == 200, what="a free slot")


def test_serve_raises_the_soft_descriptor_limit(tmp_path: Path) -> None:
    """Started with a soft RLIMIT_NOFILE of 256 under a hard one of 4096, serve runs with 4096."""
    port = free_port()
    inner = serve_process(tmp_path, port)
    process = Process(["prlimit", "--nofile=256:4096", "--", *inner.args], env=inner.env, log_path=inner.log_path)
    with running(process, f"http://127.0.0.1:{port}/healthz"):
        limits = Path(f"/proc/{process.pid}/limits").read_text()
    (line,) = [line for line in limits.splitlines() if line.startswith("Max open files")]
    assert line.split()[3:5] == ["4096", "4096"]
