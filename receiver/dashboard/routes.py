"""The dashboard's routes: pages, their live fragments, login, local copies of outputs, static files.

The pages (and Jinja with them) are imported on the first request that needs one, not when the app is built:
a receiver that starts to take a delivery does not wait for its dashboard.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

Endpoint = Callable[[Request], Awaitable[Response]]


def _on_first_use(module: str, name: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        handler: Endpoint = getattr(importlib.import_module(f"receiver.dashboard.{module}"), name)
        return await handler(request)

    endpoint.__name__ = endpoint.__qualname__ = name
    return endpoint


def routes() -> list[BaseRoute]:
    return [
        Route("/", _on_first_use("pages", "index"), methods=["GET"]),
        Route("/predictions/{prediction_id:str}", _on_first_use("pages", "detail"), methods=["GET"]),
        Route("/dead", _on_first_use("pages", "dead"), methods=["GET"]),
        Route("/fragments/index", _on_first_use("pages", "index_fragments"), methods=["GET"]),
        Route(
            "/fragments/predictions/{prediction_id:str}", _on_first_use("pages", "detail_fragments"), methods=["GET"]
        ),
        Route("/fragments/dead", _on_first_use("pages", "dead_fragments"), methods=["GET"]),
        Route("/login", _on_first_use("login", "login_form"), methods=["GET"]),
        Route("/login", _on_first_use("login", "login"), methods=["POST"]),
        Route("/logout", _on_first_use("login", "logout"), methods=["POST"]),
        Route("/media/{download_id:int}", _on_first_use("media", "local_copy"), methods=["GET"]),
        Mount("/static", StaticFiles(packages=[("receiver.dashboard", "static")]), name="static"),
    ]
