"""What a handler may do besides reading its prediction: the ``Context`` of one run.

This is the whole API a handler gets, on purpose narrow: it logs through ``logger`` (bound to the run),
reads ``settings``, calls out through ``http`` (the process's one long-lived client), checks addresses
with ``resolve``, reads the time with ``clock``, knows which ``attempt`` of ``max_attempts`` this is, keeps
files in ``media`` (the media directory or the object store), sees the outputs kept for its own prediction
(``downloads``: complete once the handlers it runs ``after=`` have succeeded) and records new ones. It never
holds a database connection: a slow
handler cannot stall anyone else's commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from receiver.store.records import Download

if TYPE_CHECKING:
    import httpx

    from receiver.media_store import MediaStore
    from receiver.settings import Settings
    from receiver.store.ledger import Ledger

# host, port -> the IP addresses the host resolves to
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    """The operating system's resolver, off the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


@dataclasses.dataclass(frozen=True, slots=True)
class StoredOutput:
    """One output of the prediction kept by ``download_outputs``: the provider's ``url`` (deleted after 7
    days), where the copy is (``location``: a local path, or an object URL), its ``size`` in bytes and
    ``sha256``."""

    url: str
    location: str
    size: int
    sha256: str
    content_type: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredOutput:
        location = row.get("location") or row["path"]
        return cls(str(row["url"]), str(location), int(row["size"]), str(row["sha256"]), row.get("content_type"))

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "location": self.location, "size": self.size, "sha256": self.sha256}


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
    media: MediaStore  # where download_outputs keeps outputs: WAVEHOOK_MEDIA_DIR or WAVEHOOK_MEDIA_URL
    _ledger: Ledger = dataclasses.field(repr=False)
    # The prediction's kept outputs when the run was claimed; empty when nothing was stored.
    downloads: tuple[StoredOutput, ...] = ()

    @property
    def last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    async def record_download(
        self, *, url: str, path: str, size: int, sha256: str, content_type: str | None = None
    ) -> None:
        """Record an output of this run's prediction kept at ``path`` (replacing an earlier copy of ``url``)."""
        download = Download(self.prediction_id, url, path, size, sha256, content_type)
        await self._ledger.record_download(download, now=self.clock())
