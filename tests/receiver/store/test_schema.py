"""Versioned migrations: a fresh file gets every one, an existing file only the new ones, its data intact.

SQLite's migrations (PostgreSQL's: tests/receiver/store/postgres/test_schema.py).
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from receiver.store.connection import SCHEMA_VERSION, connect, open_database
from receiver.store.schema import m001_ledger, migrations


def test_fresh_ledger_has_every_migration_and_the_core_tables(conn: sqlite3.Connection) -> None:
    """A fresh ledger has no pending migration and holds the core tables and a correlation secret."""
    assert migrations.pending(Database(conn)) == []
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"predictions", "events", "quarantine", "handler_runs", "meta"} <= tables
    secret = conn.execute("SELECT value FROM meta WHERE key = 'correlation_secret'").fetchone()[0]
    assert len(secret) >= 32


def test_opening_again_changes_nothing(db_path: Path) -> None:
    """Opening an up-to-date ledger applies nothing and keeps its data (the correlation secret included)."""
    conn = connect(db_path)
    try:
        before = conn.execute("SELECT value FROM meta WHERE key = 'correlation_secret'").fetchone()[0]
        conn.execute("INSERT INTO meta (key, value) VALUES ('kept', 'yes')")
    finally:
        conn.close()
    open_database(db_path)
    conn = connect(db_path)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'correlation_secret'").fetchone()[0] == before
        assert conn.execute("SELECT value FROM meta WHERE key = 'kept'").fetchone()[0] == "yes"
    finally:
        conn.close()


def test_a_later_migration_upgrades_an_existing_file(tmp_path: Path) -> None:
    """A file made by the first migration takes a later one that adds a table, without losing rows."""
    path = tmp_path / "old.db"
    first = Migrations("wavehook")
    first()(m001_ledger)
    with contextlib.closing(sqlite3.connect(path)) as db:
        first.apply(Database(db))
        db.execute("INSERT INTO meta (key, value) VALUES ('old', 'row')")
        db.commit()

    later = Migrations("wavehook")
    later()(m001_ledger)

    @later()
    def m900_example(db: Database) -> None:
        db.execute("CREATE TABLE example (id INTEGER PRIMARY KEY)")

    with contextlib.closing(sqlite3.connect(path)) as db:
        upgraded = Database(db)
        assert [m.name for m in later.pending(upgraded)] == ["m900_example"]
        later.apply(upgraded)
        assert later.pending(upgraded) == []
        assert upgraded.execute("SELECT value FROM meta WHERE key = 'old'").fetchone()[0] == "row"
        assert "example" in upgraded.table_names()


def test_schema_version_counts_the_migrations_whose_names_ledgers_recorded() -> None:
    """SCHEMA_VERSION is the number of migrations; the recorded names never change; functions are numbered
    by position (the two that shipped as m002 keep that recorded name)."""
    every = migrations.pending(Database(sqlite3.connect(":memory:")))
    assert len(every) == SCHEMA_VERSION
    assert [m.name for m in every] == [
        "m001_ledger",
        "m002_dispatch_runs",
        "m002_dispatch_downloads",
        "m003_submitter_submissions",
        "m005_revoked_sessions",
    ]
    numbers = [int(getattr(m.fn, "__name__", "")[1:4]) for m in every]
    assert numbers == list(range(1, len(every) + 1))


def test_an_up_to_date_ledger_opens_without_the_migrations(db_path: Path) -> None:
    """A ledger is stamped with SCHEMA_VERSION; a stamped one opens without loading sqlite-utils, and one made
    before the stamp existed (version 0, every migration recorded) is stamped on its next open."""
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        db.execute("PRAGMA user_version = 0")
    open_database(db_path)
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    code = (
        "import sys, pathlib; from receiver.store.connection import open_database; "
        "open_database(pathlib.Path(sys.argv[1])); print('sqlite_utils' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(db_path)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
