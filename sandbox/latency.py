"""The provider's answer time: every API call (``/api/…``) is held for a set delay before it is handled.

A provider across the internet does not answer in a millisecond, and a client's concurrency is only tested
when it does not: with instant answers, a submitter that sends one job at a time looks as fast as one that
keeps many in flight. The sandbox's own routes, uploads and media are answered at once.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

API_PREFIX = "/api/"


class AnswerDelay:
    """Pure ASGI middleware: ``seconds`` of delay before each API request reaches its route."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.seconds > 0 and scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)
