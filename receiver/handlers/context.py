"""What a handler may do besides reading its prediction: the ``Context`` of one run.

This is the whole API a handler gets, on purpose narrow: it logs through ``logger`` (bound to the run),
reads ``settings``, calls out through ``http`` (the process's one long-lived client), checks addresses
with ``resolve``, reads the time with ``clock``, knows which ``attempt`` of ``max_attempts`` this is, and
records or reads the outputs kept for its own prediction. It never holds a database connection: a slow
handler cannot stall anyone else's commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from receiver.store.records import Download

if TYPE_CHECKING:
    import httpx

    from receiver.settings import Settings
    from receiver.store.ledger import Ledger

# host, port -> the IP addresses the host resolves to
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    """The operating system's resolver, off the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """The run a handler is called for, and the shared resources it may use."""

    run_id: int
    handler: str
    prediction_id: str
    attempt: int
    max_attempts: int
    logger: Any  # a structlog logger bound to run_id, handler, prediction_id, model, attempt
    settings: Settings
    http: httpx.AsyncClient  # the process's one long-lived client
    resolve: Resolver
    clock: Callable[[], float]
    _ledger: Ledger = dataclasses.field(repr=False)

    @property
    def last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    async def record_download(
        self, *, url: str, path: str, size: int, sha256: str, content_type: str | None = None
    ) -> None:
        """Record an output of this run's prediction kept at ``path`` (replacing an earlier copy of ``url``)."""
        download = Download(self.prediction_id, url, path, size, sha256, content_type)
        await self._ledger.record_download(download, now=self.clock())

    async def downloads(self) -> list[dict[str, Any]]:
        """The outputs of this run's prediction kept so far: ``url``, ``path``, ``size``, ``sha256``, …"""
        return await self._ledger.list_downloads(self.prediction_id)
