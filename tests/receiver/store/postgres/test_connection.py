"""The pool's check at checkout: a connection the server closed is replaced before it is used; a healthy idle
connection is handed out without a round trip to the server."""

from __future__ import annotations

import asyncio
import select
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import psycopg_pool
import pytest

from receiver.store.postgres import connection
from receiver.store.postgres.connection import open_pool

pytestmark = pytest.mark.anyio


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts psycopg_pool's own check (an empty statement sent to the server), called through ours."""
    calls: list[int] = []
    original: Callable[[Any], Awaitable[None]] = psycopg_pool.AsyncConnectionPool.check_connection

    async def counted(conn: Any) -> None:
        calls.append(1)
        await original(conn)

    monkeypatch.setattr(psycopg_pool.AsyncConnectionPool, "check_connection", staticmethod(counted))
    return calls


@pytest.fixture
async def pool(postgres_url: str, round_trips: list[int]) -> AsyncIterator[psycopg_pool.AsyncConnectionPool]:
    """A pool of one connection, made after psycopg_pool's check is counted (round_trips lists it first)."""
    made = open_pool(postgres_url, max_size=1, timeout_ms=5000)
    await made.open(wait=True)
    try:
        yield made
    finally:
        await made.close()


async def _backend(pool: psycopg_pool.AsyncConnectionPool) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT pg_backend_pid() AS pid")
        row = await cur.fetchone()
    assert row is not None
    return int(dict(row)["pid"])  # the pool's rows are dicts


async def test_a_healthy_idle_connection_is_handed_out_without_a_round_trip(
    pool: psycopg_pool.AsyncConnectionPool, round_trips: list[int]
) -> None:
    pids = {await _backend(pool) for _ in range(20)}
    assert len(pids) == 1  # one connection, used 20 times
    assert round_trips == []


async def test_a_connection_the_server_closed_is_replaced_before_it_is_used(
    pool: psycopg_pool.AsyncConnectionPool, postgres_url: str, round_trips: list[int]
) -> None:
    """The server ends the pooled session (as a restart or ``pg_terminate_backend`` does): the next checkout
    sees the end on the socket, checks, discards the connection and hands out a new one; the caller's
    statement never meets the dead session."""
    before = await _backend(pool)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (before,))
    await _until_readable(pool)
    after = await _backend(pool)
    assert after != before
    assert round_trips == [1]  # the dead connection's check, and only that one


async def test_a_connection_in_a_transaction_is_checked_with_a_round_trip(
    pool: psycopg_pool.AsyncConnectionPool, round_trips: list[int]
) -> None:
    """Only an idle connection may skip the round trip; anything else gets psycopg_pool's full check."""
    async with pool.connection() as conn:
        await conn.execute("BEGIN")
        await connection.check_connection(conn)
        await conn.execute("ROLLBACK")
    assert round_trips == [1]


async def _until_readable(pool: psycopg_pool.AsyncConnectionPool, within: float = 5.0) -> None:
    """Wait until the pooled connection's socket holds what the server sent as it closed the session."""
    conn = pool._pool[0]  # the idle connection, not checked out (a checkout would run the check)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN)
    while not poller.poll(0):
        assert loop.time() < deadline, "the server's close never reached the socket"
        await asyncio.sleep(0.01)


def test_connection_room_counts_the_sessions_of_others(postgres_url: str) -> None:
    """The server's budget as the server reports it; in use, every session another session sees except the
    one that asks; five more sessions opened elsewhere are five more in use."""
    with psycopg.connect(postgres_url, autocommit=True) as probe:

        def seen() -> int:
            (count,) = probe.execute(  # type: ignore[misc]
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            ).fetchone()
            return int(count)

        def steady() -> tuple[int, connection.ConnectionRoom]:
            """The room, asked while no session came or went (those of earlier tests may still be closing)."""
            for _ in range(50):
                first, room, last = seen(), connection.connection_room(postgres_url, timeout_ms=5000), seen()
                if first == last:
                    return first, room
                time.sleep(0.05)
            raise AssertionError("sessions kept coming and going")

        budget = probe.execute(
            "SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int"
        ).fetchone()
        seen_before, before = steady()
        assert (before.max_connections, before.reserved) == budget
        assert before.version.split(".")[0].isdigit()
        assert before.in_use == seen_before  # the probe counted, the session that asked not
        others = [psycopg.connect(postgres_url, autocommit=True) for _ in range(5)]
        try:
            seen_during, during = steady()
        finally:
            for other in others:
                other.close()
    assert during.in_use == seen_during == before.in_use + 5
    assert during.free == before.max_connections - before.reserved - before.in_use - 5
