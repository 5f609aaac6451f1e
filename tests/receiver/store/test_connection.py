"""Opening the ledger: WAL, busy timeout, synchronous=FULL, and migrations safe from several processes.

SQLite's file and pragmas only (PostgreSQL's session settings and migrations: tests/receiver/store/postgres/).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from receiver.store.connection import connect, open_database
from tests.support import ROOT


def test_connection_pragmas(db_path: Path) -> None:
    """The write connection is in WAL mode, waits on a busy lock, and syncs every commit fully."""
    conn = connect(db_path, busy_timeout_ms=1234)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 1234
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.isolation_level is None  # transactions are explicit
    finally:
        conn.close()


def test_readonly_connection_cannot_write(db_path: Path) -> None:
    """A read-only connection refuses writes."""
    conn = connect(db_path, readonly=True)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    finally:
        conn.close()


def test_open_database_creates_missing_directories(tmp_path: Path) -> None:
    """A ledger path in a directory that does not exist yet is created."""
    path = tmp_path / "deep" / "er" / "ledger.db"
    open_database(path)
    assert path.exists()


@pytest.mark.integration
def test_several_processes_open_one_new_file_at_once(tmp_path: Path) -> None:
    """Three processes migrating the same new file at once all succeed and apply each migration once."""
    path = tmp_path / "shared.db"
    code = "import sys, pathlib, receiver.store.connection as s; s.open_database(pathlib.Path(sys.argv[1]))"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT) for _ in range(3)]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    conn = connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")]
        assert len(names) == len(set(names)) > 0
        assert conn.execute("SELECT count(*) FROM meta WHERE key = 'correlation_secret'").fetchone()[0] == 1
    finally:
        conn.close()
