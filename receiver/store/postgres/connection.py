"""Connections to the PostgreSQL ledger: a self-healing pool, the session settings, and one place where the
driver's errors become ``StorageUnavailable`` (503: the provider retries) or stay a job's own failure.

Every connection runs with ``synchronous_commit = on`` (a commit returns only once its WAL is flushed, so a
200 survives a crash of the database server) and a statement and lock timeout, so a stuck server turns into a
503 within the timeout instead of a hung request. A connection the server dropped is discarded by the pool,
which opens new ones in the background as soon as the server is back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def session_options(timeout_ms: int) -> str:
    timeout = max(int(timeout_ms), 1)
    return (
        "-c synchronous_commit=on "
        f"-c statement_timeout={timeout} -c lock_timeout={timeout} "
        f"-c idle_in_transaction_session_timeout={max(timeout * 6, 60_000)}"
    )


def connect_kwargs(timeout_ms: int, application_name: str = "wavehook") -> dict[str, Any]:
    return {
        "autocommit": True,  # transactions are explicit (conn.transaction())
        "row_factory": dict_row,
        "options": session_options(timeout_ms),
        "application_name": application_name,
        "connect_timeout": max(1, round(timeout_ms / 1000)),
        "prepare_threshold": 1,  # the hot statements are prepared once per connection
    }


def open_pool(url: str, *, max_size: int, timeout_ms: int, name: str = "wavehook") -> psycopg_pool.AsyncConnectionPool:
    """A pool that is not yet open (``await pool.open()``); a broken connection is replaced by itself."""
    return psycopg_pool.AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max(max_size, 1),
        kwargs=connect_kwargs(timeout_ms, name),
        timeout=max(timeout_ms / 1000, 0.1),
        # Keep retrying in the background however long the server is away; requests meanwhile get 503.
        reconnect_timeout=float("inf"),
        # One empty round trip per checkout (a group's transaction, a read) so that a connection the server
        # dropped (a restart, a failover) is replaced before it is used, not after a request failed on it.
        check=psycopg_pool.AsyncConnectionPool.check_connection,
        name=name,
        open=False,
    )


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
