"""The PostgreSQL ledger behind a connection pooler (a real PgBouncer, with its defaults). In session mode
wavehook connects, migrates and stores through it, and its sessions still run with ``synchronous_commit`` on
and its statement and lock timeouts, set after connecting (PgBouncer refuses them in the startup packet). In
transaction mode, where what wavehook keeps per session would be lost, the ledger refuses to open and says
why and what to use instead."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from receiver.errors import ConfigError
from receiver.settings import Settings
from receiver.store.ledger import open_ledger
from tests import pgbouncer, postgres
from tests.conftest import SECRET, serve_process
from tests.support import Process, free_port, prediction_body, server_unavailable, signed_headers

pytestmark = pytest.mark.anyio


@contextlib.contextmanager
def _pooler(server: postgres.Cluster, pool_mode: str) -> Iterator[pgbouncer.Bouncer]:
    """PgBouncer in ``pool_mode`` in front of ``server``; skipped (failed under ``CI``) without it."""
    try:
        with pgbouncer.bouncer(server, pool_mode=pool_mode) as started:
            yield started
    except pgbouncer.BouncerUnavailable as exc:
        server_unavailable(f"no PgBouncer could be started: {exc}")


@pytest.fixture(scope="module")
def session_pooler(postgres_server: postgres.Cluster) -> Iterator[pgbouncer.Bouncer]:
    with _pooler(postgres_server, "session") as started:
        yield started


@pytest.fixture(scope="module")
def transaction_pooler(postgres_server: postgres.Cluster) -> Iterator[pgbouncer.Bouncer]:
    with _pooler(postgres_server, "transaction") as started:
        yield started


def _database(databases: postgres.Databases, pooler: pgbouncer.Bouncer) -> Iterator[tuple[str, str]]:
    """A fresh, empty database: its URL through the pooler, and its direct URL (to look at what was stored)."""
    direct = databases.create(migrated=False)
    yield pooler.url(direct.rsplit("/", 1)[1]), direct
    databases.drop(direct)


@pytest.fixture
def databases(postgres_databases: postgres.Databases, session_pooler: pgbouncer.Bouncer) -> Iterator[tuple[str, str]]:
    yield from _database(postgres_databases, session_pooler)


@pytest.fixture
def transaction_databases(
    postgres_databases: postgres.Databases, transaction_pooler: pgbouncer.Bouncer
) -> Iterator[tuple[str, str]]:
    yield from _database(postgres_databases, transaction_pooler)


async def test_a_ledger_behind_pgbouncer_migrates_stores_and_keeps_its_session_settings(
    databases: tuple[str, str], settings_factory: Callable[..., Settings]
) -> None:
    """Opened through the pooler, the ledger creates its schema and stores a delivery; each pooled session runs
    with synchronous_commit on and the configured statement, lock and idle-in-transaction timeouts."""
    through, direct = databases
    settings = settings_factory(db=through, busy_timeout_ms=4321)
    ledger: Any = await open_ledger(settings)
    try:
        async with ledger.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'statement_timeout', "
                "'lock_timeout', 'idle_in_transaction_session_timeout') ORDER BY name"
            )
            session = {row["name"]: row["setting"] for row in await cur.fetchall()}
        from receiver.delivery import parse

        result = await ledger.ingest(parse(prediction_body("p1"), webhook_id="w1"), now=time.time())
    finally:
        await ledger.close()
    assert session == {
        "idle_in_transaction_session_timeout": "60000",
        "lock_timeout": "4321",
        "statement_timeout": "4321",
        "synchronous_commit": "on",
    }
    assert (result.duplicate, result.applied) == (False, True)
    with psycopg.connect(direct) as conn:
        assert conn.execute("SELECT webhook_id, prediction_id FROM events").fetchall() == [("w1", "p1")]


def test_wavehook_serve_behind_pgbouncer_answers_and_stores(
    databases: tuple[str, str], serve_factory: Callable[..., Process]
) -> None:
    """A real ``wavehook serve`` whose WAVEHOOK_DB goes through PgBouncer starts, answers a signed delivery 200
    once it is stored, is ready, and lists the prediction in its API."""
    through, direct = databases
    server: Any = serve_factory(env={"WAVEHOOK_DB": through})
    body = prediction_body("p-pooled")
    headers = signed_headers(SECRET, body, webhook_id="w-pooled", timestamp=int(time.time()))
    with httpx.Client(base_url=server.url, timeout=10) as client:
        answer = client.post("/webhooks/wavespeed", content=body, headers=headers)
        ready = client.get("/readyz")
        listed = client.get("/api/predictions")
    assert (answer.status_code, answer.json()) == (200, {"received": True, "duplicate": False})
    assert ready.status_code == 200
    assert [p["id"] for p in listed.json()["predictions"]] == ["p-pooled"]
    with psycopg.connect(direct) as conn:
        assert conn.execute("SELECT webhook_id FROM events").fetchall() == [("w-pooled",)]


async def test_behind_a_transaction_pooler_the_ledger_refuses_to_open_and_says_why(
    transaction_databases: tuple[str, str], settings_factory: Callable[..., Settings]
) -> None:
    """Through PgBouncer in transaction mode two open connections of the process share a server session: the
    ledger does not open, with a ConfigError naming the cause and the fix, never the password."""
    through, direct = transaction_databases
    with pytest.raises(ConfigError) as refused:
        await open_ledger(settings_factory(db=through))
    message = str(refused.value)
    assert "leads to a connection pooler in transaction mode" in message
    assert "Give it the database's direct URL or a session-mode pooler's" in message
    assert postgres_password(direct) not in message
    assert "wavehook:***@" in message


def test_wavehook_serve_behind_a_transaction_pooler_stops_at_start_and_says_why(
    transaction_databases: tuple[str, str], tmp_path: Path
) -> None:
    """A real ``wavehook serve`` through PgBouncer in transaction mode does not start serving: it exits, its
    log saying why and what to use instead."""
    through, _direct = transaction_databases
    process = serve_process(tmp_path, free_port(), env={"WAVEHOOK_DB": through}).start()
    try:
        assert process.proc is not None
        assert process.proc.wait(30) != 0
    finally:
        process.stop()
    log = process.log()
    assert "leads to a connection pooler in transaction mode" in log
    assert "Application startup failed" in log


def postgres_password(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
