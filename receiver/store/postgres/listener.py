"""Wake-ups across instances: one connection per process LISTENs for runs made due anywhere on the ledger.

A run enqueued by another instance (or a replay on another machine) NOTIFYs at its commit; the listener sets
the ledger's ``runs_enqueued`` event, so this process's dispatcher claims at once instead of at its next poll.
When the server goes away the listener reconnects with backoff, and sets the event on each reconnect:
whatever was enqueued while nobody listened is claimed then (the dispatcher's poll covers the rest).
"""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import structlog

from receiver.store.postgres.connection import RUNS_CHANNEL, connect_kwargs

logger = structlog.get_logger()


class RunsListener:
    def __init__(self, url: str, wake: asyncio.Event, *, timeout_ms: int) -> None:
        self._url = url
        self._wake = wake
        self._timeout_ms = timeout_ms
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="wavehook-runs-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        delay = 0.05
        reconnecting = False
        while True:
            try:
                # No statement timeout (none is set on this connection): it waits on purpose.
                kwargs = connect_kwargs("wavehook-listener", timeout_ms=self._timeout_ms)
                conn = await psycopg.AsyncConnection.connect(self._url, **kwargs)
                async with conn:
                    await conn.execute(f"LISTEN {RUNS_CHANNEL}")
                    delay = 0.05
                    self.listening.set()
                    if reconnecting:
                        self._wake.set()
                    async for _notice in conn.notifies():
                        self._wake.set()
            except psycopg.Error as exc:
                self.listening.clear()
                reconnecting = True
                logger.warning("runs_listener_reconnecting", error_type=type(exc).__name__, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
