"""Reads off the event loop: queries run in the default thread pool, each thread on a connection of its own."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from receiver.store.connection import connect

T = TypeVar("T")


class Reader:
    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, busy_timeout_ms=self._busy_timeout_ms)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def run_sync(self, query: Callable[[sqlite3.Connection], T]) -> T:
        return query(self._connection())

    async def run(self, query: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self.run_sync, query)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
