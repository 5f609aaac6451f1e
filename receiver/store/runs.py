"""Handler runs (the outbox) and their attempts: claim with a lease, renew, finish, release, replay, list.

Every function runs inside the caller's transaction (the writer's ``BEGIN IMMEDIATE`` group), which is what
makes a claim atomic across processes: two dispatchers can never both move the same row to ``running``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from receiver.store.records import LOST_LEASE, ClaimedRun, ReplayResult, RunEnd, RunSelection


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


def claim(
    conn: sqlite3.Connection,
    *,
    owner: str,
    now: float,
    lease_seconds: float,
    handlers: Sequence[str],
    max_attempts: Mapping[str, int],
    limit: int,
) -> list[ClaimedRun]:
    """Lease up to ``limit`` due runs of the given handlers: pending ones and those whose lease expired."""
    if limit <= 0 or not handlers:
        return []
    candidates = conn.execute(
        """
        SELECT id, state FROM handler_runs
        WHERE ((state = 'pending' AND next_at <= :now) OR (state = 'running' AND lease_until <= :now))
          AND handler IN (SELECT value FROM json_each(:handlers))
        ORDER BY next_at, id
        LIMIT :limit
        """,
        {"now": now, "handlers": json.dumps(list(handlers)), "limit": limit},
    ).fetchall()
    if not candidates:
        return []
    ids = [row["id"] for row in candidates]
    expired = [row["id"] for row in candidates if row["state"] == "running"]
    if expired:
        conn.execute(
            f"UPDATE run_attempts SET outcome = 'lost', finished_at = ?, error = ? "  # noqa: S608
            f"WHERE outcome IS NULL AND run_id IN ({_marks(expired)})",
            [now, LOST_LEASE, *expired],
        )
    rows = conn.execute(
        f"""
        UPDATE handler_runs
        SET state = 'running', attempts = attempts + 1, lease_owner = ?, lease_until = ?,
            started_at = ?, updated_at = ?
        WHERE id IN ({_marks(ids)})
        RETURNING id, prediction_id, status, handler, attempts
        """,  # noqa: S608 (placeholders only)
        [owner, now + lease_seconds, now, now, *ids],
    ).fetchall()
    predictions = _predictions(conn, {row["prediction_id"] for row in rows})
    claimed: list[ClaimedRun] = []
    for row in sorted(rows, key=lambda r: ids.index(r["id"])):
        exhausted = row["id"] in expired and row["attempts"] > max_attempts.get(row["handler"], 1)
        attempt_id = 0  # an exhausted run gets no attempt: it goes straight to dead
        if not exhausted:
            (attempt_id,) = conn.execute(
                "INSERT INTO run_attempts (run_id, attempt, owner, started_at) VALUES (?, ?, ?, ?) RETURNING id",
                (row["id"], row["attempts"], owner, now),
            ).fetchone()
        run = ClaimedRun(
            id=row["id"],
            attempt_id=attempt_id,
            prediction_id=row["prediction_id"],
            status=row["status"],
            handler=row["handler"],
            attempt=row["attempts"],
            prediction=predictions.get(row["prediction_id"], {"id": row["prediction_id"]}),
            exhausted=exhausted,
        )
        if exhausted:
            finish(conn, run, RunEnd(state="dead", outcome="lost", error=LOST_LEASE), owner=owner, now=now)
        claimed.append(run)
    return claimed


def _predictions(conn: sqlite3.Connection, ids: set[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    rows = conn.execute(f"SELECT * FROM predictions WHERE id IN ({_marks(list(ids))})", list(ids))  # noqa: S608
    return {row["id"]: dict(row) for row in rows}


def renew(conn: sqlite3.Connection, *, owner: str, run_ids: Sequence[int], lease_until: float) -> set[int]:
    """Extend the leases this owner still holds; the ids returned are the ones it still holds."""
    if not run_ids:
        return set()
    rows = conn.execute(
        f"UPDATE handler_runs SET lease_until = ? "  # noqa: S608
        f"WHERE state = 'running' AND lease_owner = ? AND id IN ({_marks(run_ids)}) RETURNING id",
        [lease_until, owner, *run_ids],
    ).fetchall()
    return {row["id"] for row in rows}


def finish(conn: sqlite3.Connection, run: ClaimedRun, end: RunEnd, *, owner: str, now: float) -> bool:
    """Record an attempt's end; the run moves only if this owner still holds this attempt's lease."""
    conn.execute(
        "UPDATE run_attempts SET finished_at = ?, duration_ms = ?, outcome = ?, error = ?, traceback = ? WHERE id = ?",
        (now, end.duration_ms, end.outcome, end.error, end.traceback, run.attempt_id),
    )
    moved = conn.execute(
        """
        UPDATE handler_runs
        SET state = :state, next_at = coalesce(:next_at, next_at), lease_owner = NULL, lease_until = NULL,
            last_error = :error, updated_at = :now,
            finished_at = CASE WHEN :state IN ('succeeded', 'dead') THEN :now END
        WHERE id = :id AND state = 'running' AND lease_owner = :owner AND attempts = :attempt
        """,
        {
            "state": end.state,
            "next_at": end.next_at,
            "error": end.error,
            "now": now,
            "id": run.id,
            "owner": owner,
            "attempt": run.attempt,
        },
    )
    return moved.rowcount == 1


def release(conn: sqlite3.Connection, runs: Sequence[ClaimedRun], *, owner: str, now: float) -> int:
    """Give back runs interrupted by a shutdown: pending again at once, the attempt not counted."""
    released = 0
    for run in runs:
        conn.execute(
            "UPDATE run_attempts SET finished_at = ?, outcome = 'released' WHERE id = ? AND outcome IS NULL",
            (now, run.attempt_id),
        )
        released += conn.execute(
            """
            UPDATE handler_runs
            SET state = 'pending', attempts = attempts - 1, next_at = ?, lease_owner = NULL, lease_until = NULL,
                updated_at = ?
            WHERE id = ? AND state = 'running' AND lease_owner = ? AND attempts = ?
            """,
            (now, now, run.id, owner, run.attempt),
        ).rowcount
    return released


def select_runs(
    conn: sqlite3.Connection,
    *,
    run_id: int | None = None,
    prediction_id: str | None = None,
    state: str | None = None,
    handler: str | None = None,
    since: float | None = None,
    before_id: int | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Runs matching every filter given, newest first; ``since`` applies to when they last changed."""
    filters = {
        "id = ?": run_id,
        "prediction_id = ?": prediction_id,
        "state = ?": state,
        "handler = ?": handler,
        "updated_at >= ?": since,
        "id < ?": before_id,
    }
    clauses = [clause for clause, value in filters.items() if value is not None]
    params: list[object] = [value for value in filters.values() if value is not None]
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    tail = " LIMIT ?" if limit is not None else ""
    if limit is not None:
        params.append(limit)
    sql = f"SELECT * FROM handler_runs {where} ORDER BY id DESC{tail}"  # noqa: S608 (fixed clauses only)
    return [dict(row) for row in conn.execute(sql, params)]


def replay(conn: sqlite3.Connection, run_ids: Sequence[int], *, now: float) -> list[int]:
    """Make finished runs (dead or succeeded) pending again with fresh attempts; others are left alone."""
    if not run_ids:
        return []
    rows = conn.execute(
        f"""
        UPDATE handler_runs
        SET state = 'pending', attempts = 0, next_at = ?, lease_owner = NULL, lease_until = NULL,
            finished_at = NULL, replays = replays + 1, updated_at = ?
        WHERE state IN ('dead', 'succeeded') AND id IN ({_marks(run_ids)})
        RETURNING id
        """,  # noqa: S608 (placeholders only)
        [now, now, *run_ids],
    ).fetchall()
    return sorted(row["id"] for row in rows)


def replay_selection(conn: sqlite3.Connection, selection: RunSelection, *, now: float, dry_run: bool) -> ReplayResult:
    """Select the runs, and unless ``dry_run`` make the finished ones pending at ``now``: one transaction."""
    matched = select_runs(
        conn,
        run_id=selection.run_id,
        prediction_id=selection.prediction_id,
        state="dead" if selection.dead else None,
        handler=selection.handler,
        since=selection.since,
    )
    ids = [run["id"] for run in matched]
    replayed = [] if dry_run else replay(conn, ids, now=now)
    return ReplayResult(matched=matched, replayed=replayed, dry_run=dry_run)


def get_run(conn: sqlite3.Connection, run_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM handler_runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        return None
    item = dict(row)
    item["attempt_history"] = [
        dict(attempt) for attempt in conn.execute("SELECT * FROM run_attempts WHERE run_id = ? ORDER BY id", (run_id,))
    ]
    return item
