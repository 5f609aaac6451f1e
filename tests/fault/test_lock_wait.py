"""The ledger file locked by another process: each delivery waits WAVEHOOK_BUSY_TIMEOUT_MS, then answers 503.

tests/integration/test_receiver_http.py shows that a held lock gives 503 and that the retry is stored once;
this measures that the wait is bounded by the setting: not shorter (the lock may be freed meanwhile) and
not much longer (the provider's own timeout must not expire first). A file lock is SQLite's alone; PostgreSQL's
lock and statement timeouts: tests/receiver/store/postgres/test_writer.py.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.receiver_client import Delivery, post, query, serve
from tests.support import prediction_body

pytestmark = pytest.mark.fault

# What the answer may take beyond the timeout on a busy 2-core machine: the request, the rollback, the log line.
SLACK = 1.0


@pytest.mark.parametrize("timeout_ms", [300, 1500])
def test_a_locked_ledger_answers_503_after_the_busy_timeout(tmp_path: Path, timeout_ms: int) -> None:
    """While another process holds the write lock, every delivery is answered 503 between the busy timeout
    and the timeout plus SLACK, and none is stored."""
    # Only deliveries use the writer here: a dispatcher's claim queued ahead would add a wait of its own.
    env = {"WAVEHOOK_BUSY_TIMEOUT_MS": str(timeout_ms), "WAVEHOOK_DISPATCH_IN_WEB": "false"}
    timeout = timeout_ms / 1000
    with serve(tmp_path, env=env) as server, httpx.Client(timeout=10) as client:
        holder = sqlite3.connect(server.db, isolation_level=None)
        waits = []
        try:
            holder.execute("BEGIN IMMEDIATE")
            for n in range(3):
                started = time.monotonic()
                response = post(client, server.url, Delivery(f"wait-{n}", prediction_body(f"p-wait-{n}")))
                waits.append(time.monotonic() - started)
                assert (response.status_code, response.json()["reason"]) == (503, "storage_unavailable")
        finally:
            holder.close()
        assert all(timeout * 0.95 <= wait <= timeout + SLACK for wait in waits), (timeout, waits)
        assert query(server.db, "SELECT count(*) FROM events") == [(0,)]
