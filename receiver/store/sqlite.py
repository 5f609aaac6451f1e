"""The SQLite ledger: one file, WAL, ``synchronous=FULL``; writes through the group-commit ``Writer``, reads
through the ``Reader``'s per-thread connections. Queries run synchronously on those threads (``run_sqlite``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from receiver.store import events
from receiver.store.connection import open_database, run
from receiver.store.ledger import Ledger
from receiver.store.query import Query
from receiver.store.reader import Reader
from receiver.store.records import IngestResult, Quarantined
from receiver.store.writer import Writer

if TYPE_CHECKING:
    import sqlite3

    from receiver.delivery import Delivery
    from receiver.settings import Settings

T = TypeVar("T")


class SQLiteLedger(Ledger):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.path = settings.db_path
        self.busy_timeout_ms = settings.busy_timeout_ms
        self.writer = Writer(self.path, busy_timeout_ms=self.busy_timeout_ms)
        self.reader = Reader(self.path, busy_timeout_ms=self.busy_timeout_ms)

    async def open(self) -> None:
        # Creating the file and migrating it takes a file lock other processes may hold: off the event loop.
        await asyncio.to_thread(open_database, self.path, busy_timeout_ms=self.busy_timeout_ms)
        self.writer.start()

    async def close(self) -> None:
        await asyncio.to_thread(self.writer.stop)
        self.reader.close()

    async def _write(self, query: Callable[[], Query[T]]) -> T:
        return await self.writer.run(lambda conn: run(conn, query()))

    async def _read(self, query: Callable[[], Query[T]], *, snapshot: bool = False) -> T:
        return await self.reader.run(lambda conn: _snapshot(conn, query) if snapshot else run(conn, query()))

    async def _record_delivery(
        self, delivery: Delivery, *, now: float, terminal_statuses: tuple[str, ...], handlers: Sequence[str]
    ) -> IngestResult:
        return await self.writer.run(
            lambda conn: events.record_delivery(
                conn, delivery, now=now, terminal_statuses=terminal_statuses, handlers=handlers
            )
        )

    async def _record_quarantine(self, item: Quarantined, *, now: float) -> int:
        return await self.writer.run(lambda conn: events.record_quarantine(conn, item, now=now))


def _snapshot(conn: sqlite3.Connection, query: Callable[[], Query[T]]) -> T:
    """One read transaction: every statement of the query sees the same moment of the file."""
    conn.execute("BEGIN")
    try:
        return run(conn, query())
    finally:
        conn.execute("COMMIT")
