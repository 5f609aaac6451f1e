"""Target (a), the ceiling of this stack: a Starlette endpoint that reads the body and answers 200."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def receive(request: Request) -> Response:
    await request.body()
    return JSONResponse({"received": True, "duplicate": False})


async def healthz(_request: Request) -> Response:
    return JSONResponse({"ok": True})


def create_app() -> Starlette:
    return Starlette(
        routes=[Route("/webhooks/wavespeed", receive, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    )
