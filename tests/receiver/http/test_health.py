"""/healthz answers while the process runs; /readyz only while the database takes a write."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from tests.postgres import make_read_only
from tests.receiver.conftest import NOW
from tests.support import direct

# Runs on every ledger backend (SQLite, PostgreSQL): see ``settings_factory``.
pytestmark = pytest.mark.usefixtures("backend")


def test_healthz(app_client: Callable[..., TestClient]) -> None:
    """/healthz answers 200 ok."""
    response = app_client().get("/healthz")
    assert (response.status_code, response.json()) == (200, {"ok": True})


def test_readyz_writes_to_the_ledger(app_client: Callable[..., TestClient]) -> None:
    """/readyz answers 200 after a real write to the ledger."""
    client = app_client()
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"ready": True})
    conn = direct(client.app.state.receiver.settings.db)  # type: ignore[attr-defined]
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'ready_probe'").fetchone()[0] == repr(NOW)
    finally:
        conn.close()


@pytest.mark.sqlite_only
def test_readyz_is_503_when_the_database_refuses_writes(app_client: Callable[..., TestClient]) -> None:
    """With writes refused (read-only), /readyz answers 503 not_ready while /healthz still answers 200."""
    client = app_client()
    client.app.state.receiver.ledger.writer.run_sync(lambda conn: conn.execute("PRAGMA query_only = ON"), 10)  # type: ignore[attr-defined]
    response = client.get("/readyz")
    assert (response.status_code, response.json()["reason"]) == (503, "not_ready")
    assert "readonly" in response.json()["error"]
    assert client.get("/healthz").status_code == 200


@pytest.mark.postgres_only
def test_readyz_is_503_when_postgres_turns_read_only(app_client: Callable[..., TestClient]) -> None:
    """A PostgreSQL ledger switched to read-only (a failover to a standby) makes /readyz 503; /healthz stays 200."""
    client = app_client()
    assert client.get("/readyz").status_code == 200
    make_read_only(client.app.state.receiver.settings.db)  # type: ignore[attr-defined]
    answers = [client.get("/readyz") for _ in range(2)]
    assert [a.status_code for a in answers] == [503, 503]
    assert "read-only" in answers[1].json()["error"]
    assert "***" in answers[1].json()["error"] or "@" not in answers[1].json()["error"]
    assert client.get("/healthz").status_code == 200


@pytest.mark.sqlite_only
def test_readyz_is_503_while_another_process_holds_the_lock(app_client: Callable[..., TestClient]) -> None:
    """A write lock held elsewhere past the busy timeout makes /readyz 503; released, it is 200 again."""
    client = app_client(busy_timeout_ms=50)
    other = sqlite3.connect(client.app.state.receiver.settings.db_path, isolation_level=None)  # type: ignore[attr-defined]
    try:
        other.execute("BEGIN IMMEDIATE")
        assert client.get("/readyz").status_code == 503
        other.execute("ROLLBACK")
        assert client.get("/readyz").status_code == 200
    finally:
        other.close()
