"""kill -9 of a real ``wavehook serve`` during a burst of signed deliveries: every 200 survives in the file.

The SQLite ledger's file; PostgreSQL's kill -9 and server restart: tests/fault/test_scale_out.py.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import httpx
import pytest

from tests.integration.receiver_client import Delivery, burst, query, serve
from tests.support import prediction_body

pytestmark = pytest.mark.fault

DELIVERIES = 240
KILL_AFTER = 60


@pytest.mark.parametrize("workers", [1, 2])
def test_every_acknowledged_delivery_survives_kill_9(tmp_path: Path, workers: int) -> None:
    """The server's process group is killed mid-burst; afterwards every delivery answered 200 is in `events`
    exactly once, the file is intact, and a restarted server takes the redeliveries as duplicates."""
    deliveries = [Delivery(f"crash-{i}", prediction_body(f"p-crash-{i}")) for i in range(DELIVERIES)]
    acknowledged: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()

    def record(delivery: Delivery, result: object) -> None:
        if result == 200:
            with lock:
                acknowledged.append(delivery.webhook_id)
                if len(acknowledged) >= KILL_AFTER:
                    enough.set()

    with serve(tmp_path, workers=workers) as server:
        killer = threading.Thread(target=lambda: enough.wait(60) and server.process.kill9())
        killer.start()
        results = burst(server.url, deliveries, threads=16, timeout=10, on_result=record)
        killer.join()
        assert not server.process.alive()

    failed = [r for r in results if r != 200]
    assert failed, "the burst ended before the kill: nothing was tested"
    assert all(isinstance(r, httpx.HTTPError) for r in failed)  # refused or cut off, never answered otherwise
    assert len(acknowledged) >= KILL_AFTER

    conn = sqlite3.connect(server.db)  # the server is dead: recovery from the WAL happens here
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = dict(conn.execute("SELECT webhook_id, count(*) FROM events GROUP BY webhook_id").fetchall())
    finally:
        conn.close()
    missing = [webhook_id for webhook_id in acknowledged if stored.get(webhook_id) != 1]
    assert missing == []

    with serve(tmp_path, workers=1) as restarted:
        assert burst(restarted.url, deliveries, threads=16) == [200] * DELIVERIES
        assert query(restarted.db, "SELECT count(*) FROM events") == [(DELIVERIES,)]
        repeated = {row[0] for row in query(restarted.db, "SELECT webhook_id FROM events WHERE duplicates > 0")}
        assert repeated >= set(acknowledged)  # the redelivery of each acknowledged one was a duplicate
