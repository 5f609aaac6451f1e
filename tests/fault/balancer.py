"""A round-robin HTTP load balancer on loopback, as in front of several receivers: each request goes to the
next backend; a backend that is down answers 502, as a real balancer does, and the provider retries."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import Counter
from collections.abc import Iterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import free_port, healthy, wait_for

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class Balancer:
    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sent: Counter[str] = Counter()  # backend -> requests forwarded
        self._next = itertools.cycle(range(len(backends)))
        self._server: uvicorn.Server | None = None

    async def _forward(self, request: Request) -> Response:
        if request.url.path == "/_balancer/health":
            return Response("ok")
        backend = self.backends[next(self._next)]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body = await request.body()
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                answer = await client.request(
                    request.method,
                    backend + request.url.path,
                    params=request.query_params,
                    headers=headers,
                    content=body,
                )
        except httpx.HTTPError as exc:
            return Response(f"backend {backend} unreachable: {type(exc).__name__}", status_code=502)
        self.sent[backend] += 1
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP | {"content-encoding"}}
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    @contextlib.contextmanager
    def running(self) -> Iterator[Balancer]:
        app = Starlette(routes=[Route("/{path:path}", self._forward, methods=["GET", "POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()), daemon=True)  # type: ignore[union-attr]
        thread.start()
        try:
            wait_for(lambda: healthy(f"{self.url}/_balancer/health"), timeout=20, what="the balancer")
            yield self
        finally:
            self._server.should_exit = True
            thread.join(10)
