"""The ledger's aggregate numbers, for the dashboard's header and the gauges of ``/metrics``."""

from __future__ import annotations

import sqlite3

from receiver.store.records import OPEN_RUN_STATES, LedgerStats


def _triples(conn: sqlite3.Connection, sql: str) -> list[tuple[str, str, int]]:
    return [(str(a), str(b), int(c)) for a, b, c in conn.execute(sql).fetchall()]


def ledger_stats(conn: sqlite3.Connection, *, now: float) -> LedgerStats:
    """Every aggregate in one read transaction, so the numbers agree with each other."""
    conn.execute("BEGIN")
    try:
        predictions = _triples(
            conn,
            "SELECT coalesce(model, 'unknown'), coalesce(status, 'unknown'), count(*) FROM predictions "
            "GROUP BY 1, 2 ORDER BY 1, 2",
        )
        runs = _triples(conn, "SELECT handler, state, count(*) FROM handler_runs GROUP BY 1, 2 ORDER BY 1, 2")
        attempts = _triples(
            conn,
            "SELECT r.handler, a.outcome, count(*) FROM run_attempts a JOIN handler_runs r ON r.id = a.run_id "
            "WHERE a.outcome IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
        )
        quarantined = [
            (str(reason), int(count))
            for reason, count in conn.execute("SELECT reason, sum(count) FROM quarantine GROUP BY 1 ORDER BY 1")
        ]
        (missed,) = conn.execute("SELECT count(*) FROM events WHERE source = 'reconcile'").fetchone()
        depth, oldest = conn.execute(
            "SELECT count(*), min(CASE WHEN state = 'pending' THEN created_at END) FROM handler_runs "
            "WHERE state IN (?, ?)",
            OPEN_RUN_STATES,
        ).fetchone()
    finally:
        conn.execute("COMMIT")
    return LedgerStats(
        predictions=predictions,
        runs=runs,
        attempts=attempts,
        quarantined=quarantined,
        missed_webhooks=int(missed),
        outbox_depth=int(depth),
        oldest_pending_age=None if oldest is None else max(0.0, now - float(oldest)),
    )


def models(conn: sqlite3.Connection) -> list[str]:
    """Every model the ledger has seen, for the dashboard's filter."""
    return [
        str(m) for (m,) in conn.execute("SELECT DISTINCT model FROM predictions WHERE model IS NOT NULL ORDER BY 1")
    ]
