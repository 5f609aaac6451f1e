"""The SQLite ledger's connections: opening them (pragmas; migrations once, under a file lock, however many
processes start), and running the shared queries on them (``run``)."""

from __future__ import annotations

import fcntl
import json
import sqlite3
from pathlib import Path
from typing import TypeVar

from receiver.store import submissions
from receiver.store.query import Query, Steps

T = TypeVar("T")

# How many migrations ``schema`` holds. An opened ledger records it as its ``user_version``; a ledger at this
# version is opened without loading the migrations (and sqlite-utils) at all, which a cold start feels.
SCHEMA_VERSION = 5


def connect(path: Path, *, busy_timeout_ms: int = 5000, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with the ledger's pragmas.

    ``synchronous=FULL`` in WAL mode is what makes a committed delivery survive power loss, not only a crash.
    """
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    if not readonly:
        conn.execute("PRAGMA synchronous = FULL")
    conn.row_factory = sqlite3.Row
    return conn


def _version(path: Path, busy_timeout_ms: int) -> int:
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def open_database(path: Path, *, busy_timeout_ms: int = 5000) -> None:
    """Create or upgrade the ledger file. Safe to call from several processes at once."""
    if _version(path, busy_timeout_ms) == SCHEMA_VERSION:
        return  # up to date, and in WAL mode since its creation (the mode is stored in the file)
    from sqlite_utils import Database

    from receiver.store.schema import migrations

    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".migrate-lock")
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # sqlite-utils needs the default (legacy) transaction handling for its atomic() blocks.
        conn = sqlite3.connect(str(path))
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            migrations.apply(Database(conn))
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.commit()
        finally:
            conn.close()


def run(conn: sqlite3.Connection, query: Query[T]) -> T:
    """Run a shared query (``receiver.store.query``) on ``conn``, inside whatever transaction its caller holds.
    SQLite binds no lists: a list parameter goes as JSON, which the statement reads with ``json_each``."""
    steps = Steps(query, "sqlite")
    step = steps.start()
    while step is not None:
        text, params = step
        cur = conn.execute(text, {k: json.dumps(v) if isinstance(v, list | tuple) else v for k, v in params.items()})
        columns = [d[0] for d in cur.description or ()]
        rows = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
        step = steps.send(rows, cur.rowcount)  # counted after the rows: RETURNING counts as they are read
    return steps.value


def claimed_by(conn: sqlite3.Connection, prediction_id: str) -> str | None:
    """``submissions.claimed_by`` at once on the writer's connection: the owner check of SQLite's ingest path."""
    return run(conn, submissions.claimed_by(prediction_id))
