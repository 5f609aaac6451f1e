"""Running a dispatcher for the life of a process: the web app's lifespan and ``wavehook worker`` share it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import httpx

from receiver.dispatch.dispatcher import Dispatcher
from receiver.handlers.registry import Handlers
from receiver.settings import Settings
from receiver.store.ledger import Ledger

USER_AGENT = "wavehook"


def http_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The process's one long-lived client for handlers (downloads, forwards, the user's own calls)."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(60.0, connect=10.0),
        headers={"user-agent": USER_AGENT},
        follow_redirects=False,
    )


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
    """The web process's dispatcher, unless WAVEHOOK_DISPATCH_IN_WEB=false or no handlers were loaded."""
    if handlers is None or not settings.dispatch_in_web or not len(handlers):
        yield None
        return
    async with dispatching(ledger, handlers, settings, clock=clock) as dispatcher:
        yield dispatcher
