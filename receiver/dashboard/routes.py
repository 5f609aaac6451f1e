"""The dashboard's routes: pages, their live fragments, login, local copies of outputs, static files."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from receiver.dashboard import login, media, pages


def routes() -> list[BaseRoute]:
    return [
        Route("/", pages.index, methods=["GET"]),
        Route("/predictions/{prediction_id:str}", pages.detail, methods=["GET"]),
        Route("/dead", pages.dead, methods=["GET"]),
        Route("/fragments/index", pages.index_fragments, methods=["GET"]),
        Route("/fragments/predictions/{prediction_id:str}", pages.detail_fragments, methods=["GET"]),
        Route("/fragments/dead", pages.dead_fragments, methods=["GET"]),
        Route("/login", login.login_form, methods=["GET"]),
        Route("/login", login.login, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/media/{download_id:int}", media.local_copy, methods=["GET"]),
        Mount("/static", StaticFiles(packages=[("receiver.dashboard", "static")]), name="static"),
    ]
