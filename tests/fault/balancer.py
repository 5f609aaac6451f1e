"""A round-robin HTTP load balancer on loopback, as in front of several receivers, run as its own process
(``python -m tests.fault.balancer PORT BACKEND...``): each request goes to the next backend; a backend that is
down answers 502, as a real balancer does, and the provider retries."""

from __future__ import annotations

import itertools
import sys
from collections.abc import AsyncIterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import ROOT, Process

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length", "content-encoding"}


def create_app(backends: list[str]) -> Starlette:
    turns = itertools.cycle(backends)
    client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200))

    async def forward(request: Request) -> Response:
        if request.url.path == "/_balancer/health":
            return Response("ok")
        backend = next(turns)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            answer = await client.request(
                request.method,
                backend + request.url.path,
                params=request.query_params,
                headers=headers,
                content=await request.body(),
            )
        except httpx.HTTPError as exc:
            return Response(f"backend {backend} unreachable: {type(exc).__name__}", status_code=502)
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])], lifespan=lifespan)


def balancer_process(port: int, backends: list[str], log_dir: object) -> Process:
    """A not yet started balancer on ``port`` in front of ``backends``."""
    from pathlib import Path

    args = [sys.executable, "-m", "tests.fault.balancer", str(port), *backends]
    return Process(args, env={"PYTHONPATH": str(ROOT)}, log_path=Path(str(log_dir)) / f"balancer-{port}.log", cwd=ROOT)


if __name__ == "__main__":
    uvicorn.run(create_app(sys.argv[2:]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
