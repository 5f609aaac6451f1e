"""Dashboard sessions revoked by logout (the cookies themselves are signed and stateless)."""

from __future__ import annotations

import sqlite3


def revoke(conn: sqlite3.Connection, session_id: str, *, forget_after: float, now: float) -> None:
    conn.execute("DELETE FROM revoked_sessions WHERE forget_after < ?", (now,))
    conn.execute(
        "INSERT INTO revoked_sessions (session_id, forget_after) VALUES (?, ?) ON CONFLICT (session_id) DO NOTHING",
        (session_id, forget_after),
    )


def is_revoked(conn: sqlite3.Connection, session_id: str) -> bool:
    row = conn.execute("SELECT 1 FROM revoked_sessions WHERE session_id = ?", (session_id,)).fetchone()
    return row is not None
