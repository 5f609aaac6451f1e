"""``wavehook serve`` answers deliveries from its HTTP protocol (``answer_directly``); with ``--access-log`` the
same requests go through the ASGI app. Both are real processes here, and every answer must be the same: status,
headers (but the date) and body, for deliveries stored, repeated and refused. Then what only a connection shows:
pipelined requests, HTTP/1.0 and ``Expect: 100-continue`` on the direct route."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SECRET, serve_process
from tests.integration.receiver_client import PATH, Server, query, raw_exchange
from tests.support import free_port, http_responses, prediction_body, running, signed_headers

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def started(tmp: Path, args: list[str]) -> Iterator[Server]:
    port = free_port()
    process = serve_process(tmp, port, env={"WAVEHOOK_DOWNLOAD": "false"})
    process.args += args
    with running(process, f"http://127.0.0.1:{port}/healthz"):
        yield Server(process, f"http://127.0.0.1:{port}", port, Path(process.env["WAVEHOOK_DB"]))


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Two receivers with their own ledgers: the direct route, and the app's route (``--access-log``)."""
    with (
        started(tmp_path_factory.mktemp("direct"), []) as direct,
        started(tmp_path_factory.mktemp("app"), ["--access-log"]) as app,
    ):
        yield {"direct": direct, "app": app}


def request(body: bytes, headers: dict[str, str], *, path: str = PATH, version: str = "1.1") -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST {path} HTTP/{version}\r\nhost: x\r\n{lines}".encode() + b"\r\n" + body


def signed(webhook_id: str, body: bytes, **extra: str) -> bytes:
    headers = signed_headers(SECRET, body, webhook_id=webhook_id) | {"content-length": str(len(body))} | extra
    return request(body, headers)


def exchange(server: Server, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection (closed by us after the answer: ``connection: close``)."""
    head, _, rest = data.partition(b"\r\n")
    ((status, headers, body),) = http_responses(raw_exchange(server.port, head + b"\r\nconnection: close\r\n" + rest))
    headers.pop("date")
    return status, headers, body


CASES = {
    "stored": lambda: signed("w-stored", prediction_body("p-stored", "completed")),
    "repeated": lambda: signed("w-stored", prediction_body("p-stored", "completed")),
    "bad signature": lambda: request(
        b"{}", signed_headers("whsec_" + "QUJD" * 8, b"{}", webhook_id="w-bad") | {"content-length": "2"}
    ),
    "no signature": lambda: request(b"{}", {"content-length": "2"}),
    "signed, not JSON": lambda: signed("w-json", b"{not json"),
    "declared too large": lambda: request(b"", {"content-length": str(50 << 20)}),
    "bad content-length": lambda: request(b"{}", {"content-length": "2x"}),
    "chunked": lambda: request(b"2\r\n{}\r\n0\r\n\r\n", {"transfer-encoding": "chunked"}),
}


def test_the_direct_route_answers_exactly_as_the_app(servers: dict[str, Server]) -> None:
    """Every case, in order, on both servers: the same status line, headers and body."""
    for name, make in CASES.items():
        direct, app = exchange(servers["direct"], make()), exchange(servers["app"], make())
        assert direct == app, name
    statuses = [exchange(servers["direct"], make())[0] for make in CASES.values()]
    assert statuses == [200, 200, 401, 401, 400, 413, 400, 401]
    assert "POST /webhooks/wavespeed" not in servers["direct"].process.log()
    assert "POST /webhooks/wavespeed" in servers["app"].process.log()  # the app's access line: the app answered


def test_pipelined_deliveries_are_answered_in_order_and_stored(servers: dict[str, Server]) -> None:
    """Two deliveries with a GET between them, in one write: three answers in that order, both stored."""
    server = servers["direct"]
    data = (
        signed("w-pipe-1", prediction_body("p-pipe-1", "processing"))
        + b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
        + signed("w-pipe-2", prediction_body("p-pipe-2", "completed"), connection="close")
    )
    answers = http_responses(raw_exchange(server.port, data))
    stored = b'{"received":true,"duplicate":false}'
    assert [(status, body) for status, _headers, body in answers] == [
        (200, stored),
        (200, b'{"ok":true}'),
        (200, stored),
    ]
    stored = query(server.db, "SELECT webhook_id FROM events WHERE webhook_id LIKE 'w-pipe-%' ORDER BY 1")
    assert stored == [("w-pipe-1",), ("w-pipe-2",)]


def test_an_http_1_0_delivery_is_answered_and_the_connection_closed(servers: dict[str, Server]) -> None:
    body = prediction_body("p-old", "completed")
    headers = signed_headers(SECRET, body, webhook_id="w-old") | {"content-length": str(len(body))}
    # raw_exchange reads until the server closes: a connection left open would time out here.
    ((status, headers_back, _body),) = http_responses(
        raw_exchange(servers["direct"].port, request(body, headers, version="1.0"), timeout=5)
    )
    assert (status, headers_back["connection"]) == (200, "close")


def test_expect_100_continue_gets_its_interim_answer_then_the_delivery_is_stored(servers: dict[str, Server]) -> None:
    server = servers["direct"]
    body = prediction_body("p-expect", "completed")
    headers = signed_headers(SECRET, body, webhook_id="w-expect") | {
        "content-length": str(len(body)),
        "expect": "100-continue",
        "connection": "close",
    }
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request(b"", headers))
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert query(server.db, "SELECT count(*) FROM events WHERE webhook_id = 'w-expect'") == [(1,)]
