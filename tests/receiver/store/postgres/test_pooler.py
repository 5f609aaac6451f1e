"""The PostgreSQL ledger behind a connection pooler (a real PgBouncer in session mode, with its defaults):
wavehook connects, migrates and stores through it, and its sessions still run with ``synchronous_commit`` on
and its statement and lock timeouts, set after connecting (PgBouncer refuses them in the startup packet)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from receiver.settings import Settings
from receiver.store.ledger import open_ledger
from tests import pgbouncer, postgres
from tests.conftest import SECRET
from tests.support import Process, prediction_body, signed_headers

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def pooler(postgres_server: postgres.Cluster) -> Iterator[pgbouncer.Bouncer]:
    """PgBouncer in session mode in front of the session's server; skipped (failed under ``CI``) without it."""
    try:
        with pgbouncer.bouncer(postgres_server) as started:
            yield started
    except pgbouncer.BouncerUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PgBouncer is required under CI: {exc}")
        pytest.skip(f"no PgBouncer could be started: {exc}")


@pytest.fixture
def databases(postgres_databases: postgres.Databases, pooler: pgbouncer.Bouncer) -> Iterator[tuple[str, str]]:
    """A fresh, empty database: its URL through the pooler, and its direct URL (to look at what was stored)."""
    direct = postgres_databases.create(migrated=False)
    yield pooler.url(direct.rsplit("/", 1)[1]), direct
    postgres_databases.drop(direct)


async def test_a_ledger_behind_pgbouncer_migrates_stores_and_keeps_its_session_settings(
    databases: tuple[str, str], settings_factory: Callable[..., Settings]
) -> None:
    """Opened through the pooler, the ledger creates its schema and stores a delivery; each pooled session runs
    with synchronous_commit on and the configured statement, lock and idle-in-transaction timeouts."""
    through, direct = databases
    settings = settings_factory(db=through, busy_timeout_ms=4321)
    ledger = await open_ledger(settings)
    try:
        async with ledger.pool.connection() as conn:  # type: ignore[attr-defined]
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
