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

A route registered with ``answer_directly`` (the webhook, by ``wavehook serve``) is answered by the protocol
itself: its request runs as uvicorn's request cycle does (body, ``Expect: 100-continue``, pipelining,
keep-alive, disconnects and shutdown all as for any request), but the answer comes back from one call and goes
out in one write, without the ASGI app stack (middleware, routing) and its response messages, which cost a
delivery about as much time as verifying and parsing it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httptools
import structlog
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from receiver.http.responses import Answer, internal_error
from receiver.settings import ConnectionSettings, Settings

logger = structlog.get_logger()

# ``respond(headers, query_string, receive)``: the request's headers as ASGI lists them, its query string, and
# the ASGI ``receive`` that gives its body.
Respond = Callable[[Sequence[tuple[bytes, bytes]], bytes, Receive], Awaitable[Answer]]


@dataclasses.dataclass(frozen=True, slots=True)
class _DirectRoute:
    path: bytes
    respond: Respond


_direct: _DirectRoute | None = None


def answer_directly(path: str, respond: Respond | None) -> None:
    """Have this process's ``GuardedProtocol`` answer ``POST path`` (exactly that path) with ``respond``
    instead of the ASGI app; ``None`` undoes it. With uvicorn's access log on, the app answers as before."""
    global _direct
    _direct = None if respond is None else _DirectRoute(path.encode("ascii"), respond)


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


class _DirectCycle(RequestResponseCycle):
    """uvicorn's request cycle (the protocol drives it as any other) whose answer comes from ``respond``."""

    respond: Respond

    async def run_asgi(self, app: Any) -> None:
        try:
            # uvicorn types the scope and messages precisely, Starlette (and ``respond``) loosely.
            headers: Sequence[tuple[bytes, bytes]] = self.scope["headers"]  # type: ignore[assignment]
            receive: Receive = self.receive  # type: ignore[assignment]
            answer = await self.respond(headers, self.scope["query_string"], receive)
        except Exception as exc:
            # As the app's own handler of the unexpected: logged, and the one JSON 500 (the connection closes).
            logger.exception("unexpected_error", error_type=type(exc).__name__)
            answer = Answer.of_error(internal_error(close_connection=True))
        try:
            if self.flow.write_paused and not self.disconnected:
                await self.flow.drain()
            if not self.disconnected:
                self._write(answer)
        finally:
            self.on_response = lambda: None

    def _write(self, answer: Answer) -> None:
        """What ``send`` writes for a start and a complete body, in one write."""
        self.response_started = True
        self.waiting_for_100_continue = False
        content = [STATUS_LINE[answer.status]]
        closes = False
        for name, value in (*self.default_headers, *answer.headers):
            if name == b"connection" and b"close" in value.lower():
                self.keep_alive, closes = False, True
            content += (name, b": ", value, b"\r\n")
        if not self.keep_alive and not closes:
            content.append(b"connection: close\r\n")
        content += (b"\r\n", answer.body)
        self.transport.write(b"".join(content))
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines, a header size cap and a JSON 503."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = _limits()
        # One timer per connection, moved lazily: arming a deadline only records it, and the timer (when it
        # fires before the deadline now due) sets itself again. A request on a kept-alive connection sets two
        # deadlines: a timer made and cancelled for each cost 2.3 µs apiece under uvloop.
        self._due: float | None = None
        self._phase = "headers"
        self._timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._tail = b""
        self._reading_headers = True

    def _arm(self, seconds: float, phase: str) -> None:
        self._due = due = self.loop.time() + seconds
        self._phase = phase
        timer = self._timer
        if timer is None or timer.when() > due:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(due, self._check_deadline)

    def _disarm(self) -> None:
        self._due = None  # the timer, if it fires, finds nothing due

    def _check_deadline(self) -> None:
        self._timer = None
        due = self._due
        if due is None:
            return
        if self.loop.time() < due:  # a later deadline was set since the timer was
            self._timer = self.loop.call_at(due, self._check_deadline)
            return
        self._due = None
        self._expired(self._phase)

    def _expired(self, phase: str) -> None:
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
        if self._timer is not None:
            self._timer.cancel()  # not kept (with the protocol) until it would fire
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            if self._due is None:
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
        if self._due is None:
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
        if not self._start_direct():
            super().on_headers_complete()

    def _start_direct(self) -> bool:
        """Start (or queue behind the request in progress) a request to the direct route; False if it is not one."""
        route = _direct
        if route is None or self.access_log or self.parser.get_method() != b"POST" or self.parser.should_upgrade():
            return False
        url = httptools.parse_url(self.url)
        if url.path != route.path:
            return False
        http_version = self.parser.get_http_version()
        scope = self.scope
        scope["method"], scope["http_version"] = "POST", http_version
        scope["path"], scope["raw_path"], scope["query_string"] = (
            route.path.decode("ascii"),
            route.path,
            url.query or b"",
        )
        in_progress = self.cycle
        self.cycle = cycle = _DirectCycle(
            scope=self.scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=False,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and self.parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        cycle.respond = route.respond
        # As uvicorn starts any request: now, or after the one in progress on this connection (pipelining).
        if in_progress is None or in_progress.response_complete:
            self._start_asgi_task(cycle, self.app)
        else:
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, self.app))
        return True

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn's keep-alive timer now runs; the next request's headers get their own deadline on arrival.
        self._reading_headers = True
        self._header_bytes = 0
        self._tail = b""
