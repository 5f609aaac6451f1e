"""Downloads: the outputs the download handler kept, one row per (prediction, URL)."""

from __future__ import annotations

import sqlite3
from typing import Any

from receiver.store.records import Download


def record_download(conn: sqlite3.Connection, download: Download, *, now: float) -> None:
    conn.execute(
        """
        INSERT INTO downloads (prediction_id, url, path, size, sha256, content_type, downloaded_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (prediction_id, url) DO UPDATE SET
            path = excluded.path, size = excluded.size, sha256 = excluded.sha256,
            content_type = excluded.content_type, downloaded_at = excluded.downloaded_at
        """,
        (
            download.prediction_id,
            download.url,
            download.path,
            download.size,
            download.sha256,
            download.content_type,
            now,
        ),
    )


def list_downloads(conn: sqlite3.Connection, prediction_id: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM downloads WHERE prediction_id = ? ORDER BY id", (prediction_id,))
    return [dict(row) for row in rows]


def get_download(conn: sqlite3.Connection, download_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM downloads WHERE id = ?", (download_id,)).fetchone()
    return None if row is None else dict(row)
