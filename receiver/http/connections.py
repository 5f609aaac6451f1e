"""Deadlines and caps on client connections, where uvicorn has no setting of its own.

uvicorn closes a keep-alive connection idle after a response (``timeout_keep_alive``) and caps connections and
tasks (``limit_concurrency``), but waits forever for a first request, for headers sent a byte at a time and for
a body that never ends, and httptools reads headers of any size. ``GuardedProtocol`` is uvicorn's httptools
protocol with what is missing:

- the request line and headers must be complete within ``header_timeout_seconds`` of the connection opening
  (or of the previous response) and hold at most ``max_header_bytes``: else 408 or 431, and the connection closes;
- the body must be complete within ``body_timeout_seconds`` of the headers: else 408 and the connection closes
  (the endpoint reading it sees a disconnect);
- over ``limit_concurrency`` the answer is a JSON 503 ``too_many_connections`` with ``Retry-After``.

Each closed connection writes one log line. The protocol is named by ``serve`` to uvicorn, which imports it in
every worker process; its limits come from the worker's settings.
"""

from __future__ import annotations

import asyncio
import functools
import os
from typing import Any

import structlog
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from receiver.settings import ConnectionSettings, Settings

logger = structlog.get_logger()


@functools.cache
def _limits() -> ConnectionSettings:
    # The worker process's own settings, as its app factory reads them (uvicorn passes the protocol no options).
    return Settings.from_env(os.environ).connections


def _answer(status: int, reason: str, message: str) -> bytes:
    body = b'{"error":"%s","reason":"%s"}' % (message.encode(), reason.encode())
    phrase = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}[status]
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n%s\r\n%s"
        % (
            status,
            phrase,
            len(body),
            b"retry-after: 1\r\n" if status == 503 else b"",
            body,
        )
    )


async def _too_many_connections(scope: Scope, receive: Receive, send: Send) -> None:
    body = (
        b'{"error":"the server holds as many connections as it accepts (WAVEHOOK_MAX_CONNECTIONS); try again shortly",'
        b'"reason":"too_many_connections"}'
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines, a header size cap and a JSON 503."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = _limits()
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._tail = b""
        self._reading_headers = True

    def _arm(self, seconds: float, phase: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, phase: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        started = self.cycle is not None and not self.cycle.response_complete and self.cycle.response_started
        # A connection that sent nothing is closed quietly; a request in progress learns why.
        if (phase == "body" or self._header_bytes) and not started:
            seconds = self.limits.body_timeout_seconds if phase == "body" else self.limits.header_timeout_seconds
            what = "body" if phase == "body" else "request headers"
            self.transport.write(_answer(408, "request_timeout", f"the {what} did not arrive within {seconds:g} s"))
        if phase == "headers" and not self._header_bytes:
            phase = "idle"
        logger.info("connection_timed_out", phase=phase, client=self.client[0] if self.client else None)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_seconds, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            if self._deadline is None:
                self._arm(self.limits.header_timeout_seconds, "headers")
            # Only the bytes up to the blank line that ends the headers count: the rest of a read is body.
            seen = self._tail + data
            end = seen.find(b"\r\n\r\n")
            self._header_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            self._tail = seen[-3:]
            if self._header_bytes > self.limits.max_header_bytes:
                self._refuse_headers()
                return
        super().data_received(data)

    def _refuse_headers(self) -> None:
        self._disarm()
        message = f"the request line and headers exceed {self.limits.max_header_bytes} bytes"
        self.transport.write(_answer(431, "headers_too_large", message))
        self.transport.close()
        logger.info("connection_refused", reason="headers_too_large", client=self.client[0] if self.client else None)

    def on_message_begin(self) -> None:
        self._reading_headers = True
        if self._deadline is None:
            self._arm(self.limits.header_timeout_seconds, "headers")
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._arm(self.limits.body_timeout_seconds, "body")
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            logger.warning("connection_limit_reached", limit=limit, connections=len(self.connections))
            # uvicorn's own answer is plain text: send ours (JSON, Retry-After) through the same path.
            app, self.app, self.limit_concurrency = self.app, _too_many_connections, None
            try:
                super().on_headers_complete()
            finally:
                self.app, self.limit_concurrency = app, limit
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn's keep-alive timer now runs; the next request's headers get their own deadline on arrival.
        self._reading_headers = True
        self._header_bytes = 0
        self._tail = b""
