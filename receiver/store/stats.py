"""The ledger's aggregate numbers, for the dashboard's header and the gauges of ``/metrics``. A backend reads
``ledger_stats`` in one snapshot (SQLite: one read transaction; PostgreSQL: repeatable read), so they agree."""

from __future__ import annotations

from receiver.store.query import SQL, Query
from receiver.store.records import OPEN_RUN_STATES, LedgerStats

_PREDICTIONS = SQL(
    "SELECT coalesce(model, 'unknown') AS a, coalesce(status, 'unknown') AS b, count(*) AS n FROM predictions "
    "GROUP BY 1, 2 ORDER BY 1, 2"
)
_RUNS = SQL("SELECT handler AS a, state AS b, count(*) AS n FROM handler_runs GROUP BY 1, 2 ORDER BY 1, 2")
_ATTEMPTS = SQL(
    "SELECT r.handler AS a, t.outcome AS b, count(*) AS n FROM run_attempts t JOIN handler_runs r ON r.id = t.run_id "
    "WHERE t.outcome IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"
)
_QUARANTINED = SQL("SELECT reason, sum(count) AS n FROM quarantine GROUP BY 1 ORDER BY 1")
_MISSED = SQL("SELECT count(*) AS n FROM events WHERE source = 'reconcile'")
_OPEN_RUNS = SQL(
    "SELECT count(*) AS depth, min(CASE WHEN state = 'pending' THEN created_at END) AS oldest "
    "FROM handler_runs WHERE state = ANY(:states::text[])"
)
_MODELS = SQL("SELECT DISTINCT model FROM predictions WHERE model IS NOT NULL ORDER BY 1")


def _triples(query: SQL) -> Query[list[tuple[str, str, int]]]:
    return [(str(row["a"]), str(row["b"]), int(row["n"])) for row in (yield query()).rows]


def ledger_stats(*, now: float) -> Query[LedgerStats]:
    """Every aggregate; read it in one snapshot so the numbers agree with each other."""
    predictions = yield from _triples(_PREDICTIONS)
    runs = yield from _triples(_RUNS)
    attempts = yield from _triples(_ATTEMPTS)
    quarantined = [(str(row["reason"]), int(row["n"])) for row in (yield _QUARANTINED()).rows]
    missed = (yield _MISSED()).rows[0]["n"]
    open_runs = (yield _OPEN_RUNS(states=list(OPEN_RUN_STATES))).rows[0]
    oldest = open_runs["oldest"]
    return LedgerStats(
        predictions=predictions,
        runs=runs,
        attempts=attempts,
        quarantined=quarantined,
        missed_webhooks=int(missed),
        outbox_depth=int(open_runs["depth"]),
        oldest_pending_age=None if oldest is None else max(0.0, now - float(oldest)),
    )


def models() -> Query[list[str]]:
    """Every model the ledger has seen, for the dashboard's filter."""
    return [str(row["model"]) for row in (yield _MODELS()).rows]
