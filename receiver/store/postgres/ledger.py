"""The PostgreSQL ledger: the second implementation of the ``Ledger`` seam, for several instances on one
database (see ``receiver.store.ledger`` for the contract every backend keeps).

Writes go through the group-commit ``GroupWriter`` on a pool of connections; reads take a pooled
connection each. A failure of the server (down, read-only, timed out, restarted) is ``StorageUnavailable``
(503); the pool reconnects by itself when the server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import structlog

from receiver.errors import ConfigError
from receiver.store.ledger import Ledger
from receiver.store.postgres import ingest
from receiver.store.postgres.connection import (
    fetch_all,
    is_unavailable,
    open_pool,
    run,
    shared_session,
    unavailable,
)
from receiver.store.postgres.listener import RunsListener
from receiver.store.postgres.schema import LOCK_CLASS, LOCKS, backend_pid, connect_and_migrate
from receiver.store.postgres.url import masked
from receiver.store.postgres.writer import GroupWriter
from receiver.store.query import Query
from receiver.store.records import IngestResult, Quarantined

if TYPE_CHECKING:
    from receiver.delivery import Delivery
    from receiver.settings import Settings

T = TypeVar("T")
logger = structlog.get_logger()


class PostgresLedger(Ledger):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.url = settings.db
        self.timeout_ms = settings.busy_timeout_ms
        pool_size = settings.db_pool_size
        self.pool = open_pool(self.url, max_size=pool_size, timeout_ms=self.timeout_ms)
        self.writer = GroupWriter(self.pool, self.url)
        self.listener = RunsListener(self.url, self.runs_enqueued, timeout_ms=self.timeout_ms)

    def __repr__(self) -> str:
        return f"PostgresLedger({masked(self.url)!r})"

    async def open(self) -> None:
        # The migration waits on an advisory lock other instances may hold: off the event loop.
        migration = await asyncio.to_thread(connect_and_migrate, self.url, timeout_ms=self.timeout_ms)
        try:
            await self.pool.open()
            # The migration's connection, still open, is the second one the pooler check needs.
            pid = await shared_session(self.pool, lambda: asyncio.to_thread(backend_pid, migration))
        except BaseException:
            await self.pool.close()
            raise
        finally:
            migration.close()
        if pid is not None:
            await self.pool.close()
            raise ConfigError(
                f"WAVEHOOK_DB ({masked(self.url)}) leads to a connection pooler in transaction mode: two "
                f"connections of this process were given one server session (pid {pid}), and wavehook keeps "
                "state per session (LISTEN, advisory locks, prepared statements, its settings). Give it the "
                "database's direct URL or a session-mode pooler's"
            )
        self.listener.start()

    async def close(self) -> None:
        await self.writer.close()
        await self.listener.stop()
        await self.pool.close()

    async def _write(self, query: Callable[[], Query[T]]) -> T:
        return await self.writer.run(lambda conn: run(conn, query()))

    async def _read(self, query: Callable[[], Query[T]], *, snapshot: bool = False) -> T:
        try:
            async with self.pool.connection() as conn:
                if not snapshot:
                    return await run(conn, query())
                async with conn.transaction():
                    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    return await run(conn, query())
        except Exception as exc:
            if is_unavailable(exc):
                raise unavailable(exc, self.url) from None
            raise

    async def _record_delivery(
        self, delivery: Delivery, *, now: float, terminal_statuses: tuple[str, ...], handlers: Sequence[str]
    ) -> IngestResult:
        job = ingest.RecordDelivery(delivery, now=now, terminal_statuses=terminal_statuses, handlers=handlers)
        result: IngestResult = await self.writer.run(job)
        return result

    async def _record_quarantine(self, item: Quarantined, *, now: float) -> int:
        return await self.writer.run(lambda conn: ingest.record_quarantine(conn, item, now=now))

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        """Hold the advisory lock ``name`` (one of ``LOCKS``) while the block runs; False when another
        instance holds it (the block then skips its work). A dead process's lock goes with its connection."""
        key = LOCKS[name]
        async with self.pool.connection() as conn:
            (row,) = await fetch_all(conn, "SELECT pg_try_advisory_lock(%s, %s) AS got", (LOCK_CLASS, key))
            got = bool(row["got"])
            try:
                yield got
            finally:
                if got:
                    with contextlib.suppress(Exception):
                        await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, key))
