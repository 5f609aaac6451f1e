"""Helpers of the dispatch integration tests: environment, workers, deliveries, and counting effects."""

from __future__ import annotations

import collections
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.support import ROOT, WAVEHOOK, Process, direct, is_url, prediction_body, signed_headers, wait_for

HANDLERS_MODULE = "tests.integration.dispatch_handlers"


def dispatch_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Test handlers loaded, built-in downloads off (the outputs' host does not exist), short leases and delays."""
    return {
        "PYTHONPATH": str(ROOT),
        "WAVEHOOK_HANDLERS": HANDLERS_MODULE,
        "DISPATCH_TEST_DIR": str(tmp_path),
        "WAVEHOOK_DOWNLOAD": "false",
        "WAVEHOOK_LOG_OUTCOMES": "false",
        "WAVEHOOK_LEASE_SECONDS": "2",
        "WAVEHOOK_DISPATCH_POLL_SECONDS": "0.2",
        "WAVEHOOK_RETRY_BASE_SECONDS": "0.3",
        "WAVEHOOK_SHUTDOWN_GRACE_SECONDS": "2",
        **extra,
    }


def start_worker(tmp_path: Path, env: dict[str, str], name: str) -> Process:
    """A real ``wavehook worker``, returned once its dispatcher has started."""
    base = {"WAVEHOOK_DB": str(tmp_path / "wavehook.db"), "WAVEHOOK_LOG_FORMAT": "json"}
    process = Process([WAVEHOOK, "worker"], env={**base, **env}, log_path=tmp_path / f"{name}.log", cwd=ROOT)
    process.start()
    wait_for(lambda: "dispatcher_started" in process.log() or not process.alive(), timeout=20, what=f"{name} to start")
    assert process.alive(), process.log()
    return process


def deliver(
    client: httpx.Client, secret: str, prediction_id: str, status: str, *, model: str, webhook_id: str | None = None
) -> httpx.Response:
    body = prediction_body(prediction_id, status, model=model)
    headers = signed_headers(secret, body, webhook_id=webhook_id or f"{prediction_id}-{status}")
    response = client.post("/webhooks/wavespeed", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response


def effects(tmp_path: Path, what: str = "done") -> list[tuple[str, str, str, int]]:
    """(handler, prediction id, status, pid) for every execution that reached ``what``."""
    path = tmp_path / "effects.log"
    if not path.exists():
        return []
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    return [(h, p, s, int(pid)) for h, p, s, w, pid, _at in rows if w == what]


def duplicates(found: list[tuple[str, str, str, int]]) -> dict[tuple[str, str, str], int]:
    counts = collections.Counter((h, p, s) for h, p, s, _pid in found)
    return {key: n for key, n in counts.items() if n > 1}


def query(db: Path | str, sql: str, *params: object) -> list[dict[str, Any]]:
    """Rows from the ledger (a SQLite file, read-only, or a PostgreSQL URL), as any other process reads it."""
    if is_url(db):
        with direct(db) as pg:
            return [dict(row) for row in pg.execute(sql, params)]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def states(db: Path | str) -> collections.Counter[str]:
    return collections.Counter(row["state"] for row in query(db, "SELECT state FROM handler_runs"))
