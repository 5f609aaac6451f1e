"""The ``meta`` table: the ledger's own key-value settings (the correlation secret) and the readiness probe."""

from __future__ import annotations

import sqlite3


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta_if_absent(conn: sqlite3.Connection, key: str, value: str) -> str:
    """Keep the first value any process wrote under ``key``; return the one stored."""
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value))
    stored = get_meta(conn, key)
    assert stored is not None
    return stored


def probe_write(conn: sqlite3.Connection, now: float) -> None:
    """A real write, for readiness: proves the file, the disk and the lock all accept one."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('ready_probe', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (repr(now),),
    )
