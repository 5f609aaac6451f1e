"""The route ``GuardedProtocol`` answers itself (``answer_directly``), driven in process through a transport that
records what the protocol writes: which requests take it, what it hands ``respond``, and what goes out.

The webhook's answers through this route, on a real ``wavehook serve``, are compared with the app's in
``tests/integration/test_receiver_direct.py``.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send
from structlog.testing import capture_logs
from uvicorn.config import Config
from uvicorn.server import ServerState

from receiver import correlation
from receiver.handlers.registry import Handlers
from receiver.http import connections
from receiver.http.app import serving_app
from receiver.http.connections import GuardedProtocol, answer_directly
from receiver.http.responses import Answer
from receiver.http.webhook import read_body
from tests.support import http_responses

pytestmark = pytest.mark.anyio
PATH = "/direct"
OK = Answer(200, [(b"content-length", b"2"), (b"content-type", b"application/json")], b"{}")


class Transport:
    """What an asyncio transport does for the protocol, recorded."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class App:
    """The ASGI app behind the protocol: answers 202 and counts its requests."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await read_body(receive, None, 1 << 20)
        await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"3")]})
        await send({"type": "http.response.body", "body": b"app"})


class Respond:
    """A direct route's ``respond`` that records what it was given."""

    def __init__(self, answer: Answer = OK, error: Exception | None = None) -> None:
        self.calls: list[tuple[dict[str, str], bytes, bytes]] = []
        self.answer = answer
        self.error = error

    async def __call__(self, headers: Sequence[tuple[bytes, bytes]], query_string: bytes, receive: Receive) -> Answer:
        body = await read_body(receive, None, 1 << 20)
        self.calls.append(({k.decode(): v.decode() for k, v in headers}, query_string, body))
        if self.error is not None:
            raise self.error
        return self.answer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
def direct() -> Iterator[Respond]:
    respond = Respond()
    answer_directly(PATH, respond)
    yield respond
    answer_directly(PATH, None)


def connect(app: App) -> tuple[GuardedProtocol, Transport]:
    # uvicorn's Config turns the access logger off for good (a process-wide change): the protocol's flag instead.
    config = Config(app=app, http=GuardedProtocol, log_config=None, ws="none", limit_concurrency=100)
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Mon, 30 Nov 2026 16:00:00 GMT")]  # as the running server keeps them
    protocol = GuardedProtocol(config=config, server_state=state, app_state={})
    protocol.access_log = False
    transport = Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def settle(protocol: GuardedProtocol) -> None:
    for _ in range(100):
        if not protocol.tasks:
            return
        await asyncio.gather(*list(protocol.tasks))
    raise AssertionError("the protocol's tasks kept coming")


def post(path: str, body: bytes, *extra: bytes, version: bytes = b"1.1") -> bytes:
    return b"POST %s HTTP/%s\r\nhost: x\r\ncontent-length: %d\r\n%s\r\n%s" % (
        path.encode(),
        version,
        len(body),
        b"".join(line + b"\r\n" for line in extra),
        body,
    )


async def test_a_post_to_the_route_is_answered_without_the_app(app: App, direct: Respond) -> None:
    """The route gets the headers, the query string and the body; its answer goes out as given, with the
    server's default headers; the connection stays open; the app never sees the request."""
    protocol, transport = connect(app)
    protocol.data_received(post(PATH + "?ref=r1&token=t", b'{"id": 1}', b"webhook-id: w1"))
    await settle(protocol)
    assert app.paths == []
    ((headers, query, body),) = direct.calls
    assert (headers["webhook-id"], query, body) == ("w1", b"ref=r1&token=t", b'{"id": 1}')
    ((status, sent, payload),) = http_responses(bytes(transport.written))
    assert (status, payload, sent["content-type"]) == (200, b"{}", "application/json")
    assert sent["date"] == "Mon, 30 Nov 2026 16:00:00 GMT"
    assert "connection" not in sent
    assert not transport.closed


async def test_other_methods_paths_and_the_access_log_go_to_the_app(app: App, direct: Respond) -> None:
    """Another method or path (a longer one, a prefix of it) reaches the app, and so does everything when
    uvicorn's access log is on (the app's cycle writes its line)."""
    protocol, transport = connect(app)
    protocol.data_received(b"GET /direct HTTP/1.1\r\nhost: x\r\n\r\n")
    protocol.data_received(post(PATH + "/more", b"x"))
    protocol.data_received(post("/dir", b"x"))
    await settle(protocol)
    logged, logged_transport = connect(app)
    logged.access_log = True
    logged.data_received(post(PATH, b"x"))
    await settle(logged)
    assert direct.calls == []
    assert app.paths == ["/direct", "/direct/more", "/dir", "/direct"]
    assert [
        status for status, _h, _b in http_responses(bytes(transport.written) + bytes(logged_transport.written))
    ] == [202] * 4


async def test_without_a_route_every_request_goes_to_the_app(app: App) -> None:
    protocol, transport = connect(app)
    protocol.data_received(post(PATH, b"x"))
    await settle(protocol)
    assert app.paths == [PATH]
    assert http_responses(bytes(transport.written))[0][0] == 202


async def test_pipelined_requests_are_answered_in_their_order(app: App, direct: Respond) -> None:
    """Three requests in one read, direct, app, direct: three answers in that order, each body to its own."""
    protocol, transport = connect(app)
    protocol.data_received(post(PATH, b"one") + post("/other", b"two") + post(PATH, b"three"))
    for _ in range(5):
        await settle(protocol)
        await asyncio.sleep(0)
    assert [body for _h, _q, body in direct.calls] == [b"one", b"three"]
    assert [(status, body) for status, _h, body in http_responses(bytes(transport.written))] == [
        (200, b"{}"),
        (202, b"app"),
        (200, b"{}"),
    ]


@pytest.mark.parametrize(
    ("version", "extra"),
    [(b"1.0", ()), (b"1.1", (b"connection: close",))],
    ids=["http-1.0", "connection-close"],
)
async def test_a_request_that_ends_its_connection_is_answered_then_closed(
    app: App, direct: Respond, version: bytes, extra: tuple[bytes, ...]
) -> None:
    protocol, transport = connect(app)
    protocol.data_received(post(PATH, b"x", *extra, version=version))
    await settle(protocol)
    ((status, headers, _body),) = http_responses(bytes(transport.written))
    assert (status, headers["connection"], transport.closed) == (200, "close", True)


async def test_an_answer_that_closes_the_connection_closes_it(app: App) -> None:
    closing = Answer(413, [(b"content-length", b"2"), (b"connection", b"close")], b"{}")
    answer_directly(PATH, Respond(closing))
    try:
        protocol, transport = connect(app)
        protocol.data_received(post(PATH, b"x"))
        await settle(protocol)
    finally:
        answer_directly(PATH, None)
    ((status, headers, _body),) = http_responses(bytes(transport.written))
    assert (status, headers["connection"], transport.closed) == (413, "close", True)


async def test_expect_100_continue_is_answered_before_the_body_is_read(app: App, direct: Respond) -> None:
    protocol, transport = connect(app)
    protocol.data_received(b"POST /direct HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n")
    await asyncio.sleep(0.01)
    assert bytes(transport.written) == b"HTTP/1.1 100 Continue\r\n\r\n"
    protocol.data_received(b"body")
    await settle(protocol)
    assert [body for _h, _q, body in direct.calls] == [b"body"]
    assert bytes(transport.written).count(b"HTTP/1.1 200 OK") == 1


async def test_an_unexpected_failure_is_the_json_500_and_a_log_line(app: App) -> None:
    """A bug behind the route: logged with its type (no traceback text in the answer), the one JSON 500, and
    the connection closed, as the app's own handler of the unexpected answers."""
    answer_directly(PATH, Respond(error=ZeroDivisionError("a bug")))
    try:
        protocol, transport = connect(app)
        with capture_logs() as logs:
            protocol.data_received(post(PATH, b"x"))
            await settle(protocol)
    finally:
        answer_directly(PATH, None)
    ((status, headers, body),) = http_responses(bytes(transport.written))
    assert (status, json.loads(body)["reason"], headers["connection"]) == (500, "internal_error", "close")
    assert b"a bug" not in bytes(transport.written)
    assert transport.closed
    assert [(line["event"], line["error_type"]) for line in logs] == [("unexpected_error", "ZeroDivisionError")]


def test_serve_s_app_registers_the_webhook_route(settings_factory: Any) -> None:
    """``serving_app`` (what ``wavehook serve`` runs) has the protocol answer the webhook path directly."""
    try:
        serving_app(settings_factory(), Handlers([]))
        route = connections._direct
        assert route is not None
        assert route.path == correlation.WEBHOOK_PATH.encode()
    finally:
        answer_directly(correlation.WEBHOOK_PATH, None)
        gc.unfreeze()
