"""The PostgreSQL ledger's aggregate numbers, read in one repeatable-read snapshot so they agree."""

from __future__ import annotations

from psycopg.rows import tuple_row

from receiver.store.postgres.connection import Conn, fetch_all
from receiver.store.records import OPEN_RUN_STATES, LedgerStats


async def _triples(conn: Conn, sql: str) -> list[tuple[str, str, int]]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(sql)
    return [(str(a), str(b), int(c)) for a, b, c in await cur.fetchall()]


async def ledger_stats(conn: Conn, *, now: float) -> LedgerStats:
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        predictions = await _triples(
            conn,
            "SELECT coalesce(model, 'unknown'), coalesce(status, 'unknown'), count(*) FROM predictions "
            "GROUP BY 1, 2 ORDER BY 1, 2",
        )
        runs = await _triples(conn, "SELECT handler, state, count(*) FROM handler_runs GROUP BY 1, 2 ORDER BY 1, 2")
        attempts = await _triples(
            conn,
            "SELECT r.handler, a.outcome, count(*) FROM run_attempts a JOIN handler_runs r ON r.id = a.run_id "
            "WHERE a.outcome IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
        )
        quarantined = [
            (str(row["reason"]), int(row["n"]))
            for row in await fetch_all(conn, "SELECT reason, sum(count) AS n FROM quarantine GROUP BY 1 ORDER BY 1")
        ]
        (missed,) = await fetch_all(conn, "SELECT count(*) AS n FROM events WHERE source = 'reconcile'")
        (open_runs,) = await fetch_all(
            conn,
            "SELECT count(*) AS depth, min(CASE WHEN state = 'pending' THEN created_at END) AS oldest "
            "FROM handler_runs WHERE state = ANY(%s::text[])",
            (list(OPEN_RUN_STATES),),
        )
    oldest = open_runs["oldest"]
    return LedgerStats(
        predictions=predictions,
        runs=runs,
        attempts=attempts,
        quarantined=quarantined,
        missed_webhooks=int(missed["n"]),
        outbox_depth=int(open_runs["depth"]),
        oldest_pending_age=None if oldest is None else max(0.0, now - float(oldest)),
    )


async def models(conn: Conn) -> list[str]:
    """Every model the ledger has seen, for the dashboard's filter."""
    rows = await fetch_all(conn, "SELECT DISTINCT model FROM predictions WHERE model IS NOT NULL ORDER BY 1")
    return [str(row["model"]) for row in rows]
