"""Handler runs on PostgreSQL: claimed with ``FOR UPDATE SKIP LOCKED`` and a lease, renewed, finished, replayed.

Many dispatchers in many processes claim at once: each locks the due rows no one else holds and skips the
rest, so no run is handed to two of them and none waits on another's claim. A claim whose worker dies is
taken over when its lease expires. Every function runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from receiver.store.postgres.connection import RUNS_CHANNEL, Conn, fetch_all
from receiver.store.records import (
    LOST_LEASE,
    NOT_RUN_PREFIX,
    ClaimedRun,
    Download,
    ReplayResult,
    RunEnd,
    RunSelection,
)

# A run's dependency (``after=``) of the same outcome in a given state: the (handler, dependency) pairs come
# as two arrays. A dependency with no run for this outcome (it does not apply to it) does not hold.
_UNMET = """
    SELECT 1 FROM unnest(%(after_handlers)s::text[], %(after_deps)s::text[]) AS pair (handler, dependency)
    JOIN handler_runs AS d ON d.prediction_id = r.prediction_id AND d.status = r.status
        AND d.handler = pair.dependency
    WHERE pair.handler = r.handler AND d.state {test}
"""

# The error of a run that never ran: "not run: <dependency> ended dead", built from the dead dependency.
_NOT_RUN = """(
    SELECT %(not_run)s || d.handler || ' ended dead for this outcome (replay it, or the prediction, to run both)'
    FROM unnest(%(after_handlers)s::text[], %(after_deps)s::text[]) AS pair (handler, dependency)
    JOIN handler_runs AS d ON d.prediction_id = r.prediction_id AND d.status = r.status
        AND d.handler = pair.dependency
    WHERE pair.handler = r.handler AND d.state = 'dead' LIMIT 1
)"""


def _pairs(after: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    pairs = [(handler, dependency) for handler, deps in after.items() for dependency in deps]
    return {"after_handlers": [h for h, _d in pairs], "after_deps": [d for _h, d in pairs]}


async def _end_blocked(conn: Conn, pairs: dict[str, list[str]], *, now: float) -> None:
    """Pending runs one of whose dependencies ended dead are never run: they end dead, saying which one.
    Repeated until nothing changes, so a chain (a after b after c) ends in one claim when c dies."""
    while True:
        cur = await conn.execute(
            f"""
            UPDATE handler_runs AS r
            SET state = 'dead', finished_at = %(now)s, updated_at = %(now)s, lease_owner = NULL,
                lease_until = NULL, last_error = {_NOT_RUN}
            WHERE r.state = 'pending' AND EXISTS ({_UNMET.format(test="= 'dead'")})
            """,  # noqa: S608 (fixed text only)
            {"now": now, "not_run": NOT_RUN_PREFIX, **pairs},
        )
        if not cur.rowcount:
            return


async def claim(
    conn: Conn,
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
    if pairs["after_handlers"]:
        await _end_blocked(conn, pairs, now=now)
    rows = await fetch_all(
        conn,
        f"""
        WITH due AS (
            SELECT id, state AS was FROM handler_runs AS r
            WHERE ((state = 'pending' AND next_at <= %(now)s) OR (state = 'running' AND lease_until <= %(now)s))
              AND handler = ANY(%(handlers)s::text[])
              AND NOT EXISTS ({_UNMET.format(test="<> 'succeeded'")})
            ORDER BY next_at, id
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        )
        UPDATE handler_runs AS r
        SET state = 'running', attempts = r.attempts + 1, lease_owner = %(owner)s, lease_until = %(until)s,
            started_at = %(now)s, updated_at = %(now)s
        FROM due WHERE r.id = due.id
        RETURNING r.id, r.prediction_id, r.status, r.handler, r.attempts, r.next_at, due.was
        """,  # noqa: S608 (fixed text only)
        {
            "now": now,
            "handlers": list(handlers),
            "limit": limit,
            "owner": owner,
            "until": now + lease_seconds,
            **pairs,
        },
    )
    if not rows:
        return []
    rows.sort(key=lambda r: (r["next_at"], r["id"]))
    expired = [row["id"] for row in rows if row["was"] == "running"]
    if expired:
        await conn.execute(
            "UPDATE run_attempts SET outcome = 'lost', finished_at = %s, error = %s "
            "WHERE outcome IS NULL AND run_id = ANY(%s::bigint[])",
            (now, LOST_LEASE, expired),
        )
    fresh = [
        row for row in rows if not (row["was"] == "running" and row["attempts"] > max_attempts.get(row["handler"], 1))
    ]
    attempt_ids: dict[int, int] = {}
    if fresh:
        inserted = await fetch_all(
            conn,
            "INSERT INTO run_attempts (run_id, attempt, owner, started_at) "
            "SELECT run_id, attempt, %s, %s FROM unnest(%s::bigint[], %s::int[]) AS t (run_id, attempt) "
            "RETURNING id, run_id",
            (owner, now, [r["id"] for r in fresh], [r["attempts"] for r in fresh]),
        )
        attempt_ids = {row["run_id"]: row["id"] for row in inserted}
    predictions = await _predictions(conn, {row["prediction_id"] for row in rows})
    stored = await _downloads(conn, {row["prediction_id"] for row in rows})
    claimed: list[ClaimedRun] = []
    for row in rows:
        exhausted = row["id"] not in attempt_ids
        run = ClaimedRun(
            id=row["id"],
            attempt_id=attempt_ids.get(row["id"], 0),  # an exhausted run gets no attempt: it goes straight to dead
            prediction_id=row["prediction_id"],
            status=row["status"],
            handler=row["handler"],
            attempt=row["attempts"],
            prediction=predictions.get(row["prediction_id"], {"id": row["prediction_id"]}),
            exhausted=exhausted,
            downloads=tuple(stored.get(row["prediction_id"], ())),
        )
        if exhausted:
            await finish(conn, run, RunEnd(state="dead", outcome="lost", error=LOST_LEASE), owner=owner, now=now)
        claimed.append(run)
    return claimed


async def _predictions(conn: Conn, ids: set[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    rows = await fetch_all(conn, "SELECT * FROM predictions WHERE id = ANY(%s::text[])", (list(ids),))
    return {row["id"]: row for row in rows}


async def _downloads(conn: Conn, ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The outputs kept so far of each prediction, oldest first: what its handlers see as ``ctx.downloads``."""
    found: dict[str, list[dict[str, Any]]] = {}
    if ids:
        for row in await fetch_all(
            conn, "SELECT * FROM downloads WHERE prediction_id = ANY(%s::text[]) ORDER BY id", (list(ids),)
        ):
            found.setdefault(row["prediction_id"], []).append(row)
    return found


async def renew(conn: Conn, *, owner: str, run_ids: Sequence[int], lease_until: float) -> set[int]:
    """Extend the leases this owner still holds; the ids returned are the ones it still holds."""
    if not run_ids:
        return set()
    rows = await fetch_all(
        conn,
        "UPDATE handler_runs SET lease_until = %s "
        "WHERE state = 'running' AND lease_owner = %s AND id = ANY(%s::bigint[]) RETURNING id",
        (lease_until, owner, list(run_ids)),
    )
    return {row["id"] for row in rows}


async def finish(conn: Conn, run: ClaimedRun, end: RunEnd, *, owner: str, now: float) -> bool:
    """Record an attempt's end; the run moves only if this owner still holds this attempt's lease."""
    await conn.execute(
        "UPDATE run_attempts SET finished_at = %s, duration_ms = %s, outcome = %s, error = %s, traceback = %s "
        "WHERE id = %s",
        (now, end.duration_ms, end.outcome, end.error, end.traceback, run.attempt_id),
    )
    cur = await conn.execute(
        """
        UPDATE handler_runs
        SET state = %(state)s, next_at = coalesce(%(next_at)s, next_at), lease_owner = NULL, lease_until = NULL,
            last_error = %(error)s, updated_at = %(now)s,
            finished_at = CASE WHEN %(state)s IN ('succeeded', 'dead') THEN %(now)s END
        WHERE id = %(id)s AND state = 'running' AND lease_owner = %(owner)s AND attempts = %(attempt)s
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
    return cur.rowcount == 1


async def release(conn: Conn, runs: Sequence[ClaimedRun], *, owner: str, now: float) -> int:
    """Give back runs interrupted by a shutdown: pending again at once, the attempt not counted."""
    released = 0
    for run in runs:
        await conn.execute(
            "UPDATE run_attempts SET finished_at = %s, outcome = 'released' WHERE id = %s AND outcome IS NULL",
            (now, run.attempt_id),
        )
        cur = await conn.execute(
            """
            UPDATE handler_runs
            SET state = 'pending', attempts = attempts - 1, next_at = %s, lease_owner = NULL, lease_until = NULL,
                updated_at = %s
            WHERE id = %s AND state = 'running' AND lease_owner = %s AND attempts = %s
            """,
            (now, now, run.id, owner, run.attempt),
        )
        released += cur.rowcount
    return released


async def select_runs(
    conn: Conn,
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
        "id = %s": run_id,
        "prediction_id = %s": prediction_id,
        "state = %s": state,
        "handler = %s": handler,
        "updated_at >= %s": since,
        "id < %s": before_id,
    }
    clauses = [clause for clause, value in filters.items() if value is not None]
    params: list[object] = [value for value in filters.values() if value is not None]
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    tail = " LIMIT %s" if limit is not None else ""
    if limit is not None:
        params.append(limit)
    return await fetch_all(conn, f"SELECT * FROM handler_runs {where} ORDER BY id DESC{tail}", params)  # noqa: S608


async def replay(conn: Conn, run_ids: Sequence[int], *, now: float) -> list[int]:
    """Make finished runs (dead or succeeded) pending again with fresh attempts; others are left alone."""
    if not run_ids:
        return []
    rows = await fetch_all(
        conn,
        """
        UPDATE handler_runs
        SET state = 'pending', attempts = 0, next_at = %s, lease_owner = NULL, lease_until = NULL,
            finished_at = NULL, replays = replays + 1, updated_at = %s
        WHERE state IN ('dead', 'succeeded') AND id = ANY(%s::bigint[])
        RETURNING id
        """,
        (now, now, list(run_ids)),
    )
    return sorted(row["id"] for row in rows)


async def replay_selection(conn: Conn, selection: RunSelection, *, now: float, dry_run: bool) -> ReplayResult:
    """Select the runs, and unless ``dry_run`` make the finished ones pending at ``now``: one transaction."""
    matched = await select_runs(
        conn,
        run_id=selection.run_id,
        prediction_id=selection.prediction_id,
        state="dead" if selection.dead else None,
        handler=selection.handler,
        since=selection.since,
    )
    replayed = [] if dry_run else await replay(conn, [run["id"] for run in matched], now=now)
    if replayed:
        await conn.execute(f"SELECT pg_notify('{RUNS_CHANNEL}', '')")
    return ReplayResult(matched=matched, replayed=replayed, dry_run=dry_run)


async def get_run(conn: Conn, run_id: int) -> dict[str, Any] | None:
    rows = await fetch_all(conn, "SELECT * FROM handler_runs WHERE id = %s", (run_id,))
    if not rows:
        return None
    item = rows[0]
    item["attempt_history"] = await fetch_all(
        conn, "SELECT * FROM run_attempts WHERE run_id = %s ORDER BY id", (run_id,)
    )
    return item


async def record_download(conn: Conn, download: Download, *, now: float) -> None:
    await conn.execute(
        """
        INSERT INTO downloads (prediction_id, url, path, size, sha256, content_type, downloaded_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (prediction_id, url) DO UPDATE SET
            path = excluded.path, size = excluded.size, sha256 = excluded.sha256,
            content_type = excluded.content_type, downloaded_at = excluded.downloaded_at
        """,
        (
            download.prediction_id,
            download.url,
            download.path,
            download.size,
            download.sha256,
            download.content_type,
            now,
        ),
    )


async def list_downloads(conn: Conn, prediction_id: str) -> list[dict[str, Any]]:
    return await fetch_all(conn, "SELECT * FROM downloads WHERE prediction_id = %s ORDER BY id", (prediction_id,))
