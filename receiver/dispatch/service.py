"""Running a dispatcher for the life of a process: the web app's lifespan and ``wavehook worker`` share it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from receiver.dispatch.dispatcher import Dispatcher
from receiver.handlers.registry import Handlers
from receiver.settings import Settings
from receiver.store.ledger import Ledger


@contextlib.asynccontextmanager
async def dispatching(
    ledger: Ledger,
    handlers: Handlers,
    settings: Settings,
    *,
    wake: asyncio.Event | None = None,
    clock: Callable[[], float] = time.time,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Dispatcher]:
    """Start a dispatcher; on exit stop it gracefully (before the caller closes the ledger it uses)."""
    from receiver.dispatch.client import http_client

    async with http_client(transport) as http:
        dispatcher = Dispatcher(ledger, handlers, settings, http=http, clock=clock, wake=wake)
        dispatcher.start()
        try:
            yield dispatcher
        finally:
            await dispatcher.stop()


@contextlib.asynccontextmanager
async def dispatching_in_web(
    ledger: Ledger,
    handlers: Handlers | None,
    settings: Settings,
    *,
    clock: Callable[[], float],
) -> AsyncIterator[Dispatcher | None]:
    """The web process's dispatcher, unless WAVEHOOK_DISPATCH_IN_WEB=false or no handlers were loaded.

    It starts beside the server rather than before it: making the HTTP client (loading the CA certificates) is
    done in a thread while the first deliveries are already answered. Runs they enqueue wait for it, not them.
    """
    if handlers is None or not settings.dispatch_in_web or not len(handlers):
        yield None
        return
    dispatcher = Dispatcher(ledger, handlers, settings, http=None, clock=clock)
    dispatcher.start()
    try:
        yield dispatcher
    finally:
        await dispatcher.stop()
        if dispatcher.http is not None:
            await dispatcher.http.aclose()
