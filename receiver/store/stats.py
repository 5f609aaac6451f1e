"""The ledger's aggregate numbers, for the dashboard's header and the gauges of ``/metrics``."""

from __future__ import annotations

import dataclasses
import sqlite3

# Runs still owed work: waiting for their turn, or held by a dispatcher right now.
OPEN_RUN_STATES = ("pending", "running")


@dataclasses.dataclass(frozen=True, slots=True)
class LedgerStats:
    predictions: list[tuple[str, str, int]]  # (model, status, count)
    runs: list[tuple[str, str, int]]  # (handler, state, count)
    attempts: list[tuple[str, str, int]]  # (handler, outcome, count) of finished attempts
    quarantined: list[tuple[str, int]]  # (reason, deliveries)
    missed_webhooks: int
    outbox_depth: int
    oldest_pending_age: float | None  # seconds; None when nothing is pending

    @property
    def dead_runs(self) -> int:
        return sum(count for _handler, state, count in self.runs if state == "dead")

    def as_json(self) -> dict[str, object]:
        return {
            "predictions": [{"model": m, "status": s, "count": c} for m, s, c in self.predictions],
            "runs": [{"handler": h, "state": s, "count": c} for h, s, c in self.runs],
            "quarantined": sum(count for _reason, count in self.quarantined),
            "missed_webhooks": self.missed_webhooks,
            "dead_runs": self.dead_runs,
            "outbox_depth": self.outbox_depth,
            "oldest_pending_age_seconds": self.oldest_pending_age,
        }


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
