"""Versioned migrations: a fresh file gets every one, an existing file only the new ones, its data intact."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from receiver.store.connection import connect, open_database
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
