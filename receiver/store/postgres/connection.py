"""Connections to the PostgreSQL ledger: a self-healing pool, the session settings, and one place where the
driver's errors become ``StorageUnavailable`` (503: the provider retries) or stay a job's own failure.

Every connection runs with ``synchronous_commit = on`` (a commit returns only once its WAL is flushed, so a
200 survives a crash of the database server) and a statement and lock timeout, so a stuck server turns into a
503 within the timeout instead of a hung request; both are set once the connection is made, so that they hold
behind a connection pooler too. A connection the server dropped is discarded by the pool,
which opens new ones in the background as soon as the server is back.
"""

from __future__ import annotations

import dataclasses
import select
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg_pool
import structlog
from psycopg import errors as pg_errors
from psycopg.rows import dict_row

from receiver.errors import StorageUnavailable
from receiver.store.postgres.url import masked
from receiver.store.query import Query, Steps
from receiver.store.runs import RUNS_CHANNEL as RUNS_CHANNEL  # what the listener and the ingest path name

T = TypeVar("T")
logger = structlog.get_logger()
IDLE = psycopg.pq.TransactionStatus.IDLE
Conn = psycopg.AsyncConnection[Any]

# Failures of the database itself, not of what a job asked: the whole group fails and is answered 503.
# (A read-only server raises ReadOnlySqlTransaction, an InternalError; a timeout QueryCanceled.)
_UNAVAILABLE = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.InternalError,
    pg_errors.InsufficientResources,
    psycopg_pool.PoolTimeout,
    psycopg_pool.PoolClosed,
    OSError,
)
# Worth running the same group again at once: another transaction won a lock race.
RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure, pg_errors.LockNotAvailable)


def is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, _UNAVAILABLE)


def unavailable(exc: BaseException, url: str) -> StorageUnavailable:
    """The 503 for a database failure; the message names the (masked) server, never a password."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StorageUnavailable(f"the PostgreSQL ledger at {masked(url)} refused the write: {detail}")


def session_settings(timeout_ms: int | None) -> dict[str, str]:
    """What every wavehook session runs with: ``synchronous_commit`` on, and (given ``timeout_ms``) a statement,
    lock and idle-in-transaction limit. ``None``: no limits, for a connection that waits on purpose."""
    settings = {"synchronous_commit": "on"}
    if timeout_ms is not None:
        timeout = max(int(timeout_ms), 1)
        settings |= {
            "statement_timeout": str(timeout),
            "lock_timeout": str(timeout),
            "idle_in_transaction_session_timeout": str(max(timeout * 6, 60_000)),
        }
    return settings


def _set_session(settings: Mapping[str, str]) -> tuple[str, list[str]]:
    """One statement that sets ``settings`` for the session (``SET`` takes no parameters; ``set_config`` does)."""
    calls = ", ".join("set_config(%s, %s, false)" for _ in settings)
    return f"SELECT {calls}", [part for item in settings.items() for part in item]


def configure_session(conn: psycopg.Connection[Any], settings: Mapping[str, str]) -> None:
    """Apply ``settings`` to a new blocking connection, committed (they outlive any transaction after it).

    Set after connecting, not sent as the startup packet's ``options``: connection poolers refuse that
    parameter (PgBouncer by default) or may drop it, and a setting dropped on the way would go unnoticed."""
    conn.execute(*_set_session(settings), prepare=False)
    conn.commit()


async def configure_session_async(conn: Conn, settings: Mapping[str, str]) -> None:
    """``configure_session`` for an async connection."""
    await conn.execute(*_set_session(settings), prepare=False)
    await conn.commit()


def connect_kwargs(application_name: str = "wavehook", *, timeout_ms: int) -> dict[str, Any]:
    """How wavehook connects; the session's settings come after (``configure_session``)."""
    return {
        "autocommit": True,  # transactions are explicit (conn.transaction())
        "row_factory": dict_row,
        "application_name": application_name,
        "connect_timeout": max(1, round(timeout_ms / 1000)),
        "prepare_threshold": 1,  # the hot statements are prepared once per connection
    }


def open_pool(url: str, *, max_size: int, timeout_ms: int, name: str = "wavehook") -> psycopg_pool.AsyncConnectionPool:
    """A pool that is not yet open (``await pool.open()``); a broken connection is replaced by itself."""
    settings = session_settings(timeout_ms)

    async def configure(conn: Conn) -> None:
        await configure_session_async(conn, settings)

    return psycopg_pool.AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max(max_size, 1),
        kwargs=connect_kwargs(name, timeout_ms=timeout_ms),
        configure=configure,
        timeout=max(timeout_ms / 1000, 0.1),
        # Keep retrying in the background however long the server is away; requests meanwhile get 503.
        reconnect_timeout=float("inf"),
        # A connection the server dropped (a restart, a failover) is replaced before it is used, not after a
        # request failed on it.
        check=check_connection,
        name=name,
        open=False,
    )


async def check_connection(conn: Conn) -> None:
    """The pool's check at each checkout (a group's transaction, a read): raises if ``conn`` is unusable.

    An idle connection the server still holds has nothing to read; one it closed or is closing (a restart, a
    failover, ``pg_terminate_backend``, an idle timeout) has its end of stream or its last error waiting on the
    socket. So the socket is polled, without blocking, and only a connection with something waiting gets the
    empty round trip of psycopg_pool's own check. (That round trip at every checkout cost about 100 µs of the
    receiver's CPU and one more wait on the server before each group's statement.)"""
    pgconn = conn.pgconn
    if not conn.closed and pgconn.status == psycopg.pq.ConnStatus.OK and pgconn.transaction_status == IDLE:
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
        if not poller.poll(0):
            return
    await psycopg_pool.AsyncConnectionPool.check_connection(conn)


async def shared_session(
    pool: psycopg_pool.AsyncConnectionPool, other_pid: Callable[[], Awaitable[int]], *, rounds: int = 3
) -> int | None:
    """The server session (its backend pid) that a pooled connection and another connection, open at the same
    time (``other_pid`` asks it for its session in a transaction of its own), were both given; None when each
    has its own, as on a direct connection or behind a pooler in session mode.

    Only a pooler that hands out server sessions per transaction (PgBouncer's ``pool_mode = transaction``)
    gives one to two open clients, and PgBouncer hands the one just released (last in, first out) to the next
    transaction: the other connection's statement lands on the session the pooled one's just left. A few
    rounds, in case another session was handed out in between."""
    for _round in range(rounds):
        async with pool.connection() as pooled:
            cur = await pooled.execute("SELECT pg_backend_pid() AS pid", prepare=False)
            (row,) = await cur.fetchall()
        pid = int(dict(row)["pid"])
        if await other_pid() == pid:
            return pid
    return None


async def fetch_all(conn: Conn, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
    """The rows of one statement as dicts keyed by column name (the seam's row shape)."""
    cur = await conn.execute(sql, params)
    return [dict(row) for row in await cur.fetchall()]


async def run(conn: Conn, query: Query[T]) -> T:
    """Run a shared query (``receiver.store.query``) on ``conn``, inside whatever transaction its caller holds."""
    steps = Steps(query, "postgres")
    step = steps.start()
    while step is not None:
        cur = await conn.execute(*step)
        step = steps.send([dict(row) for row in await cur.fetchall()] if cur.description else [], cur.rowcount)
    return steps.value


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionRoom:
    """The server's connection budget, as one more process would find it."""

    version: str
    max_connections: int
    reserved: int  # slots kept for superusers (and, from PostgreSQL 16, for roles granted pg_use_reserved_connections)
    in_use: int  # client sessions open now, other than the one that asked

    @property
    def free(self) -> int:
        return max(self.max_connections - self.reserved - self.in_use, 0)


def connection_room(url: str, *, timeout_ms: int) -> ConnectionRoom:
    """Ask the server how many connections it takes and how many are in use (blocking, one short session).

    A role that is not a superuser sees every session in ``pg_stat_activity``, if not what it runs, so the count
    covers every instance on the server (and anything else connected to it). Raises ``psycopg.Error``."""
    with psycopg.connect(url, **connect_kwargs("wavehook-doctor", timeout_ms=timeout_ms)) as conn:
        row = conn.execute(
            """
            SELECT current_setting('server_version') AS version,
                   current_setting('max_connections')::int AS max_connections,
                   current_setting('superuser_reserved_connections')::int
                     + coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved,
                   (SELECT count(*) FROM pg_stat_activity
                    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int AS in_use
            """,
            prepare=False,
        ).fetchone()
    assert row is not None
    return ConnectionRoom(**row)
