"""``GuardedProtocol``'s header and body deadlines in process, on short limits: one timer per connection,
moved lazily, must cut a connection exactly when the deadline now due has passed, never at an earlier one.

The same deadlines against a real ``wavehook serve`` are in ``tests/integration/test_receiver_connections.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from receiver.http.connections import GuardedProtocol
from tests.receiver.http.test_direct_route import App, Transport, post, settle
from tests.support import http_responses

pytestmark = pytest.mark.anyio
HEADERS, BODY = 0.2, 1.0  # seconds: far apart, so that a loaded machine cannot blur them


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def connect(headers: float = HEADERS, body: float = BODY) -> tuple[GuardedProtocol, Transport]:
    config = Config(app=App(), http=GuardedProtocol, log_config=None, ws="none", timeout_keep_alive=30)
    config.load()
    protocol = GuardedProtocol(config=config, server_state=ServerState(), app_state={})
    protocol.access_log = False
    protocol.limits = dataclasses.replace(protocol.limits, header_timeout_seconds=headers, body_timeout_seconds=body)
    transport = Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def closed_after(transport: Transport, started: float, limit: float = 5.0) -> float:
    while not transport.closed:
        assert time.monotonic() - started < limit, "the connection was never closed"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_a_body_deadline_set_after_the_header_deadline_is_the_one_kept() -> None:
    """Headers complete before their deadline, then no body: the timer armed for the headers fires first and
    must wait on for the body's deadline (not cut the connection at the header deadline); then a 408 naming
    the body."""
    protocol, transport = connect()
    started = time.monotonic()
    await asyncio.sleep(HEADERS / 2)
    protocol.data_received(b"POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n12345")
    headers_done = time.monotonic()
    elapsed = await closed_after(transport, started)
    assert elapsed >= headers_done - started + BODY - 0.05
    ((status, _headers, body),) = http_responses(bytes(transport.written))
    assert status == 408
    assert b"the body did not arrive within 1 s" in body


async def test_a_deadline_earlier_than_the_timer_moves_the_timer() -> None:
    """A body deadline shorter than the header deadline pending: the timer must be moved earlier, or the
    connection would be cut late."""
    protocol, transport = connect(headers=BODY, body=HEADERS)
    started = time.monotonic()
    protocol.data_received(b"POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n12345")
    assert HEADERS - 0.05 <= await closed_after(transport, started) < BODY - 0.1
    ((status, _headers, body),) = http_responses(bytes(transport.written))
    assert (status, b"the body did not arrive" in body) == (408, True)


async def test_each_request_on_a_kept_alive_connection_gets_its_own_header_deadline() -> None:
    """Requests spread over more than three header deadlines are all answered and the connection stays open
    (the timer armed for the first one must not cut a later one); then a request whose headers stop short is
    cut at the header deadline counted from its first bytes."""
    protocol, transport = connect()
    for _ in range(4):
        await asyncio.sleep(HEADERS * 0.8)
        protocol.data_received(post("/x", b"{}"))
        await settle(protocol)
        assert not transport.closed
    started = time.monotonic()
    protocol.data_received(b"POST /x HTTP/1.1\r\nhost: x\r\n")
    assert HEADERS - 0.05 <= await closed_after(transport, started) < BODY
    statuses = [status for status, _h, _b in http_responses(bytes(transport.written))]
    assert statuses == [202, 202, 202, 202, 408]


async def test_a_closed_connection_keeps_no_timer() -> None:
    protocol, transport = connect()
    protocol.data_received(b"POST /x HTTP/1.1\r\nhost: x\r\n")
    protocol.connection_lost(None)
    assert protocol._timer is None
    await asyncio.sleep(HEADERS * 1.5)
    assert transport.written == b""
