"""Handler runs (the outbox) and their attempts: claim with a lease, renew, finish, release, replay, list.

Every function runs inside the caller's transaction (the writer's ``BEGIN IMMEDIATE`` group), which is what
makes a claim atomic across processes: two dispatchers can never both move the same row to ``running``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from receiver.store.records import LOST_LEASE, NOT_RUN_PREFIX, ClaimedRun, ReplayResult, RunEnd, RunSelection


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


# A run's dependency (``after=``) of the same outcome that has not succeeded: (handler, dependency) pairs in
# :after, as a JSON array. A dependency with no run for this outcome (it does not apply to it) does not hold.
_UNMET = """
    SELECT 1 FROM json_each(:after) pair
    JOIN handler_runs d ON d.prediction_id = r.prediction_id AND d.status = r.status
        AND d.handler = json_extract(pair.value, '$[1]')
    WHERE json_extract(pair.value, '$[0]') = r.handler AND d.state {test}
"""


# The error of a run that never ran: "not run: <dependency> ended dead", built in SQL from the dead dependency.
NOT_RUN_SQL = """(
    SELECT :not_run || d.handler || ' ended dead for this outcome (replay it, or the prediction, to run both)'
    FROM json_each(:after) pair
    JOIN handler_runs d ON d.prediction_id = r.prediction_id AND d.status = r.status
        AND d.handler = json_extract(pair.value, '$[1]')
    WHERE json_extract(pair.value, '$[0]') = r.handler AND d.state = 'dead' LIMIT 1
)"""


def _pairs(after: Mapping[str, Sequence[str]]) -> str:
    return json.dumps([[handler, dependency] for handler, deps in after.items() for dependency in deps])


def _end_blocked(conn: sqlite3.Connection, pairs: str, *, now: float) -> None:
    """Pending runs one of whose dependencies ended dead are never run: they end dead, saying which one.

    Repeated until nothing changes, so a chain (a after b after c) ends in one claim when c dies.
    """
    while True:
        ended = conn.execute(
            f"""
            UPDATE handler_runs AS r
            SET state = 'dead', finished_at = :now, updated_at = :now, lease_owner = NULL, lease_until = NULL,
                last_error = {NOT_RUN_SQL}
            WHERE r.state = 'pending' AND EXISTS ({_UNMET.format(test="= 'dead'")})
            """,  # noqa: S608 (fixed text only)
            {"now": now, "after": pairs, "not_run": NOT_RUN_PREFIX},
        ).rowcount
        if not ended:
            return


def claim(
    conn: sqlite3.Connection,
    *,
    owner: str,
    now: float,
    lease_seconds: float,
    handlers: Sequence[str],
    max_attempts: Mapping[str, int],
    limit: int,
    after: Mapping[str, Sequence[str]] | None = None,
) -> list[ClaimedRun]:
    """Lease up to ``limit`` due runs of the given handlers: pending ones and those whose lease expired.

    A run whose handler runs ``after`` others waits until their runs for the same outcome have succeeded, and
    ends dead (never run) if one of them ended dead.
    """
    if limit <= 0 or not handlers:
        return []
    pairs = _pairs(after or {})
    if pairs != "[]":
        _end_blocked(conn, pairs, now=now)
    candidates = conn.execute(
        f"""
        SELECT id, state FROM handler_runs AS r
        WHERE ((state = 'pending' AND next_at <= :now) OR (state = 'running' AND lease_until <= :now))
          AND handler IN (SELECT value FROM json_each(:handlers))
          AND NOT EXISTS ({_UNMET.format(test="!= 'succeeded'")})
        ORDER BY next_at, id
        LIMIT :limit
        """,  # noqa: S608 (fixed text only)
        {"now": now, "handlers": json.dumps(list(handlers)), "limit": limit, "after": pairs},
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
    stored = _downloads(conn, {row["prediction_id"] for row in rows})
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
            downloads=tuple(stored.get(row["prediction_id"], ())),
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


def _downloads(conn: sqlite3.Connection, ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The outputs kept so far of each prediction, oldest first: what its handlers see as ``ctx.downloads``."""
    found: dict[str, list[dict[str, Any]]] = {}
    if not ids:
        return found
    rows = conn.execute(
        f"SELECT * FROM downloads WHERE prediction_id IN ({_marks(list(ids))}) ORDER BY id",  # noqa: S608
        list(ids),
    )
    for row in rows:
        found.setdefault(row["prediction_id"], []).append(dict(row))
    return found


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
    if not dry_run:
        ids += _never_run_beside(conn, matched)
    replayed = [] if dry_run else replay(conn, ids, now=now)
    return ReplayResult(matched=matched, replayed=replayed, dry_run=dry_run)


def _never_run_beside(conn: sqlite3.Connection, matched: Sequence[Mapping[str, Any]]) -> list[int]:
    """Runs of the same outcomes that ended dead without running because a dependency had died: replaying the
    dependency gives them their turn again (they still wait for it to succeed)."""
    outcomes = {(run["prediction_id"], run["status"]) for run in matched}
    found: list[int] = []
    for prediction_id, status in outcomes:
        found += [
            row["id"]
            for row in conn.execute(
                "SELECT id FROM handler_runs WHERE prediction_id = ? AND status = ? AND state = 'dead' "
                "AND attempts = 0 AND last_error LIKE ?",
                (prediction_id, status, NOT_RUN_PREFIX + "%"),
            )
        ]
    return found


def get_run(conn: sqlite3.Connection, run_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM handler_runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        return None
    item = dict(row)
    item["attempt_history"] = [
        dict(attempt) for attempt in conn.execute("SELECT * FROM run_attempts WHERE run_id = ? ORDER BY id", (run_id,))
    ]
    return item
