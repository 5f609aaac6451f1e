"""Opening the ledger: pragmas, migrations (once, under a file lock, however many processes start)."""

from __future__ import annotations

import fcntl
import sqlite3
from pathlib import Path

from sqlite_utils import Database

from receiver.store.schema import migrations


def connect(path: Path, *, busy_timeout_ms: int = 5000, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with the ledger's pragmas.

    ``synchronous=FULL`` in WAL mode is what makes a committed delivery survive power loss, not only a crash.
    """
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    if not readonly:
        conn.execute("PRAGMA synchronous = FULL")
    conn.row_factory = sqlite3.Row
    return conn


def open_database(path: Path, *, busy_timeout_ms: int = 5000) -> None:
    """Create or upgrade the ledger file. Safe to call from several processes at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".migrate-lock")
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # sqlite-utils needs the default (legacy) transaction handling for its atomic() blocks.
        conn = sqlite3.connect(str(path))
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            migrations.apply(Database(conn))
        finally:
            conn.close()
