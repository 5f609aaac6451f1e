"""The PostgreSQL ledger's migrations: the SQLite ledger's tables and columns, versioned, transactional, and
safe when ten instances boot at once."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from receiver.delivery import parse
from receiver.errors import ConfigError
from receiver.store.connection import open_database
from receiver.store.postgres.ingest import RECORD_DELIVERIES, RECORD_GROUP, RecordDelivery
from receiver.store.postgres.schema import MIGRATIONS, Migration, migrate
from receiver.store.records import IngestResult
from tests.postgres import Databases
from tests.support import ROOT, wait_for


def _pg_columns(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        ).fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return found


def test_postgres_ledger_has_every_table_and_column_of_the_sqlite_ledger(postgres_url: str, tmp_path: Path) -> None:
    """Both backends hold the same tables with the same columns (bookkeeping tables aside)."""
    path = tmp_path / "ledger.db"
    open_database(path)
    with sqlite3.connect(path) as lite:
        tables = [r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        sqlite_columns = {
            t: {c[1] for c in lite.execute(f"PRAGMA table_info({t})")} for t in tables if not t.startswith("_")
        }
    pg_columns = _pg_columns(postgres_url)
    pg_columns.pop("wavehook_migrations")
    assert pg_columns == sqlite_columns


def test_fresh_database_gets_every_migration_and_a_correlation_secret(postgres_databases: Databases) -> None:
    """An empty database takes every migration once; a second run applies nothing and keeps the secret."""
    url = postgres_databases.create(migrated=False)
    try:
        with psycopg.connect(url) as conn:
            assert migrate(conn) == [f"{m.version:04d}_{m.name}" for m in MIGRATIONS]
            (secret,) = conn.execute("SELECT value FROM meta WHERE key = 'correlation_secret'").fetchone()  # type: ignore[misc]
            assert len(secret) >= 32
            assert migrate(conn) == []
            assert conn.execute("SELECT value FROM meta WHERE key = 'correlation_secret'").fetchone() == (secret,)
    finally:
        postgres_databases.drop(url)


def test_a_failing_migration_leaves_nothing_behind(postgres_url: str) -> None:
    """A migration that raises rolls back with everything it did; its version is not recorded."""

    def broken(cur: psycopg.Cursor[object]) -> None:
        cur.execute("CREATE TABLE half_done (id INTEGER)")
        raise RuntimeError("boom")

    later = (*MIGRATIONS, Migration(900, "broken", broken))
    with psycopg.connect(postgres_url) as conn:
        with pytest.raises(RuntimeError, match="boom"):
            migrate(conn, later)
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
        assert conn.execute("SELECT max(version) FROM wavehook_migrations").fetchone() == (MIGRATIONS[-1].version,)


def test_a_later_migration_upgrades_an_existing_ledger_and_keeps_its_rows(postgres_url: str) -> None:
    """A ledger at the current version takes only the new migration; its rows stay."""

    def example(cur: psycopg.Cursor[object]) -> None:
        cur.execute("CREATE TABLE example (id INTEGER PRIMARY KEY)")

    with psycopg.connect(postgres_url) as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('old', 'row')")
        conn.commit()
        assert migrate(conn, (*MIGRATIONS, Migration(900, "example", example))) == ["0900_example"]
        assert conn.execute("SELECT value FROM meta WHERE key = 'old'").fetchone() == ("row",)
        assert conn.execute("SELECT to_regclass('example')").fetchone() == ("example",)


def test_a_ledger_migrated_by_a_newer_version_is_refused_with_a_clear_error(postgres_url: str) -> None:
    """Code older than the ledger's schema refuses to run on it, and says so."""
    newer = (*MIGRATIONS, Migration(MIGRATIONS[-1].version + 1, "future", lambda cur: None))
    with psycopg.connect(postgres_url) as conn:
        migrate(conn, newer)
        with pytest.raises(ConfigError, match="newer than this wavehook knows"):
            migrate(conn)


def test_ten_instances_booting_at_once_migrate_once(postgres_databases: Databases, tmp_path: Path) -> None:
    """Ten processes connected to an empty database and released together: one applies every migration,
    the nine others find nothing left, none fails, and the ledger holds each version once."""
    url = postgres_databases.create(migrated=False)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.receiver.store.postgres.migrate_once", url, str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(10)
    ]
    try:
        wait_for(lambda: _backends(url) >= 10, timeout=30, what="ten connected instances")
        go.touch()
        outputs = [proc.communicate(timeout=60) for proc in procs]
        assert [proc.returncode for proc in procs] == [0] * 10, [err for _out, err in outputs]
        applied = [json.loads(out) for out, _err in outputs]
        assert sorted(len(names) for names in applied) == [0] * 9 + [len(MIGRATIONS)]
        with psycopg.connect(url) as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM wavehook_migrations ORDER BY 1")]
            assert versions == [m.version for m in MIGRATIONS]
            assert conn.execute("SELECT count(*) FROM meta WHERE key = 'correlation_secret'").fetchone() == (1,)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        postgres_databases.drop(url)


def _backends(url: str) -> int:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


def test_a_ledger_of_the_previous_version_takes_the_group_function_and_both_versions_keep_writing(
    postgres_databases: Databases,
) -> None:
    """A rolling upgrade: the ledger at migration 3 gets migration 4's group function, and an instance of the
    previous version (which calls migration 3's function) still stores deliveries beside the new ones."""
    url = postgres_databases.create(migrated=False)

    def old_instance_stores(conn: psycopg.Connection[Any], number: int) -> None:
        body = json.dumps({"id": f"old-{number}", "status": "completed", "model": "m"}).encode()
        row = {"i": 1, "webhook_id": f"w-old-{number}", "body_sha256": hashlib.sha256(body).hexdigest(),
               "prediction_id": f"old-{number}", "status": "completed", "source": "webhook", "model": "m",
               "rank": 2, "now": time.time(), "handlers": []}  # fmt: skip
        answer = conn.execute(
            "SELECT r_event_id, r_moved FROM wavehook_record_deliveries(%s::json, %s::bytea[], %s::text[], %s::text[])",
            (json.dumps([row]), [body], [row["webhook_id"]], [row["prediction_id"]]),
        ).fetchone()
        assert answer is not None
        assert answer[0] is not None  # stored
        assert answer[1] is True  # applied

    async def new_instance_stores() -> None:
        body = json.dumps({"id": "new-1", "status": "completed", "model": "m"}).encode()
        job = RecordDelivery(parse(body, webhook_id="w-new-1"), now=time.time(), terminal_statuses=("completed",),
                             handlers=[])  # fmt: skip
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            (result,) = await RecordDelivery.run_batch(conn, [job])
        assert isinstance(result, IngestResult)
        assert result.applied

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            assert migrate(conn, MIGRATIONS[:3])[-1] == "0003_record_deliveries"
            old_instance_stores(conn, 1)
            assert migrate(conn) == ["0004_record_group"]
            old_instance_stores(conn, 2)
            asyncio.run(new_instance_stores())
            stored = conn.execute("SELECT id, status FROM predictions ORDER BY id").fetchall()
            assert stored == [("new-1", "completed"), ("old-1", "completed"), ("old-2", "completed")]
    finally:
        postgres_databases.drop(url)


def test_the_functions_of_shipped_migrations_keep_their_text() -> None:
    """Migrations 3 and 4 create their functions from SQL the write path shares helpers with: a change to a
    helper must not change what a migration that has shipped creates (a new migration replaces it instead)."""
    shipped = {
        "0003": (RECORD_DELIVERIES, "83299fcc4f9b1446f3a0dbebafbe1588592c88552d47826c4dfa80638592d7e5"),
        "0004": (RECORD_GROUP, "89201b30fbfe6c1bdab8ed810836bb3d49934692fcaf29baa66b82eab496522b"),
    }
    for version, (sql, digest) in shipped.items():
        assert hashlib.sha256(sql.encode()).hexdigest() == digest, f"migration {version}'s SQL changed"
