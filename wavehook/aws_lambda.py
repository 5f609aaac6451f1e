"""AWS Lambda entry point: set the function's handler to ``wavehook.aws_lambda.handler``.

Install with ``pip install 'wavehook[lambda]'``. Mangum (the ASGI adapter for Lambda) turns API Gateway HTTP
API (v2), REST API, function URL and ALB events into requests to the same app ``wavehook serve`` runs.

Mangum runs an app's lifespan around every invocation; the receiver's lifespan opens the ledger and its
writer, which should happen once per container, not once per delivery. So this module runs the lifespan
itself, on the first invocation, on Mangum's event loop, and leaves it open for the container's life (Lambda
freezes the process between invocations and ends it without a signal: every 200 was committed before it was
sent, so nothing is lost). Handlers never run here (WAVEHOOK_DISPATCH_IN_WEB is forced off: a frozen CPU
would strand them); ``wavehook worker --burst`` on a schedule, or an always-on worker, runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from receiver.settings import Settings


class LambdaHandler:
    """A Lambda handler around one app: its lifespan entered once, then each event through Mangum."""

    def __init__(self, app: Starlette) -> None:
        from mangum import Mangum

        self.app = app
        # Mangum runs each event on the thread's current loop; this one is ours, so close() can close it.
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.adapter = Mangum(self._with_state, lifespan="off")
        self.state: dict[str, Any] | None = None
        self._lifespan: contextlib.AbstractAsyncContextManager[Any] | None = None

    async def _with_state(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.state:
            scope["state"] = dict(self.state)  # what a lifespan yields, as uvicorn hands it to each request
        await self.app(scope, receive, send)

    async def _startup(self) -> None:
        lifespan = self.app.router.lifespan_context(self.app)
        yielded = await lifespan.__aenter__()
        self._lifespan = lifespan
        self.state = dict(yielded) if isinstance(yielded, Mapping) else {}

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if self._lifespan is None:
            self.loop.run_until_complete(self._startup())
        response: dict[str, Any] = self.adapter(event, context)
        return response

    def close(self) -> None:
        """Run the lifespan's shutdown and close the loop (tests; Lambda ends a container without a call)."""
        if self._lifespan is not None:
            lifespan, self._lifespan = self._lifespan, None
            self.loop.run_until_complete(lifespan.__aexit__(None, None, None))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
        asyncio.set_event_loop(None)


def make_handler(settings: Settings) -> LambdaHandler:
    """The handler for ``settings``, with the user's handler modules routed (their runs are enqueued) and
    dispatch off in this process."""
    from receiver.handlers.registry import load_handlers
    from receiver.http.app import create_app

    settings = settings.replace(dispatch_in_web=False)
    return LambdaHandler(create_app(settings, handlers=load_handlers(settings)))


@functools.cache
def _from_env() -> LambdaHandler:
    from receiver import logs

    settings = Settings.from_env(os.environ)
    logs.configure(log_format=settings.log_format, level=settings.log_level)
    return make_handler(settings)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The function's entry point: settings from the environment, read on the container's first event."""
    return _from_env()(event, context)


__all__ = ["LambdaHandler", "handler", "make_handler"]
