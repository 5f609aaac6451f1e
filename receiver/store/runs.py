"""Handler runs (the outbox) and their attempts: claim with a lease, renew, finish, release, replay, list.

Every function runs inside the caller's transaction (the writer's group), which is what makes a claim
atomic across processes: two dispatchers can never both move the same row to ``running``. SQLite's writer
holds the file's write lock (``BEGIN IMMEDIATE``); on PostgreSQL, where many dispatchers in many processes
claim at once, the due rows are locked ``FOR UPDATE SKIP LOCKED``: each takes those no one else holds and
none waits on another's claim. A claim whose worker dies is taken over when its lease expires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from receiver.store.downloads import downloads_of
from receiver.store.predictions import attempts_by_run
from receiver.store.query import SQL, Query, where
from receiver.store.records import LOST_LEASE, NOT_RUN_PREFIX, ClaimedRun, ReplayResult, RunEnd, RunSelection

# Dispatchers of every PostgreSQL instance LISTEN here; a transaction that makes runs due NOTIFYs (at commit).
RUNS_CHANNEL = "wavehook_runs"


def _zipped(alias: str, first: tuple[str, str, str], second: tuple[str, str, str]) -> dict[str, str]:
    """Each dialect's table of two list parameters side by side: ``(column, parameter, PostgreSQL type)`` each."""
    (a, a_param, a_type), (b, b_param, b_type) = first, second
    x, y = f"json_each(:{a_param}) AS x", f"json_each(:{b_param}) AS y"
    return {
        "sqlite": f"(SELECT x.value AS {a}, y.value AS {b} FROM {x} JOIN {y} ON y.key = x.key) AS {alias}",  # noqa: S608
        "postgres": f"unnest(:{a_param}::{a_type}[], :{b_param}::{b_type}[]) AS {alias} ({a}, {b})",
    }


# The (handler, dependency) pairs of ``after=``: a dependency of the same outcome in a given state. A
# dependency with no run for this outcome (it does not apply to it) does not hold.
_PAIRS = _zipped("pair", ("handler", "after_handlers", "text"), ("dependency", "after_dependencies", "text"))
_UNMET = """
    SELECT 1 FROM {pairs}
    JOIN handler_runs AS d ON d.prediction_id = r.prediction_id AND d.status = r.status
        AND d.handler = pair.dependency
    WHERE pair.handler = r.handler AND d.state {test}
"""
# The error of a run that never ran: "not run: <dependency> ended dead", built from the dead dependency.
_NOT_RUN = """(
    SELECT :not_run || d.handler || ' ended dead for this outcome (replay it, or the prediction, to run both)'
    FROM {pairs}
    JOIN handler_runs AS d ON d.prediction_id = r.prediction_id AND d.status = r.status
        AND d.handler = pair.dependency
    WHERE pair.handler = r.handler AND d.state = 'dead' LIMIT 1
)"""
_END_BLOCKED = """
    UPDATE handler_runs AS r
    SET state = 'dead', finished_at = :now, updated_at = :now, lease_owner = NULL, lease_until = NULL,
        last_error = {not_run}
    WHERE r.state = 'pending' AND EXISTS ({unmet})
"""
# Due: pending and due, or running with an expired lease, whose dependencies have all succeeded.
_DUE = """
    SELECT id, state FROM handler_runs AS r
    WHERE ((state = 'pending' AND next_at <= :now) OR (state = 'running' AND lease_until <= :now))
      AND handler = ANY(:handlers::text[])
      AND NOT EXISTS ({unmet})
    ORDER BY next_at, id
    LIMIT :limit{lock}
"""
_ATTEMPT_ROWS = _zipped("t", ("run_id", "run_ids", "bigint"), ("attempt", "attempts", "int"))


def _dialects(text: str, **parts: Mapping[str, str] | str) -> SQL:
    def of(dialect: str) -> dict[str, str]:
        return {name: part if isinstance(part, str) else part[dialect] for name, part in parts.items()}

    return SQL(sqlite=text.format(**of("sqlite")), postgres=text.format(**of("postgres")))


_END_BLOCKED_SQL = _dialects(
    _END_BLOCKED,
    not_run={d: _NOT_RUN.format(pairs=p) for d, p in _PAIRS.items()},
    unmet={d: _UNMET.format(pairs=p, test="= 'dead'") for d, p in _PAIRS.items()},
)
_DUE_SQL = _dialects(
    _DUE,
    unmet={d: _UNMET.format(pairs=p, test="<> 'succeeded'") for d, p in _PAIRS.items()},
    lock={"sqlite": "", "postgres": "\n    FOR UPDATE SKIP LOCKED"},
)
_LOSE = SQL(
    "UPDATE run_attempts SET outcome = 'lost', finished_at = :now, error = :error "
    "WHERE outcome IS NULL AND run_id = ANY(:ids::bigint[])"
)
_TAKE = SQL(
    """
    UPDATE handler_runs
    SET state = 'running', attempts = attempts + 1, lease_owner = :owner, lease_until = :until,
        started_at = :now, updated_at = :now
    WHERE id = ANY(:ids::bigint[])
    RETURNING id, prediction_id, status, handler, attempts
    """
)
_ATTEMPTS = _dialects(
    "INSERT INTO run_attempts (run_id, attempt, owner, started_at) "
    "SELECT t.run_id, t.attempt, :owner, :now FROM {rows} RETURNING id, run_id",
    rows=_ATTEMPT_ROWS,
)
_PREDICTIONS = SQL("SELECT * FROM predictions WHERE id = ANY(:ids::text[])")
_RENEW = SQL(
    "UPDATE handler_runs SET lease_until = :until "
    "WHERE state = 'running' AND lease_owner = :owner AND id = ANY(:ids::bigint[]) RETURNING id"
)
_END_ATTEMPT = SQL(
    "UPDATE run_attempts SET finished_at = :now, duration_ms = :duration_ms, outcome = :outcome, error = :error, "
    "traceback = :traceback WHERE id = :id"
)
_FINISH = SQL(
    """
    UPDATE handler_runs
    SET state = :state, next_at = coalesce(:next_at, next_at), lease_owner = NULL, lease_until = NULL,
        last_error = :error, updated_at = :now,
        finished_at = CASE WHEN :state IN ('succeeded', 'dead') THEN :now END
    WHERE id = :id AND state = 'running' AND lease_owner = :owner AND attempts = :attempt
    """
)
_RELEASE_ATTEMPT = SQL(
    "UPDATE run_attempts SET finished_at = :now, outcome = 'released' WHERE id = :id AND outcome IS NULL"
)
_RELEASE = SQL(
    """
    UPDATE handler_runs
    SET state = 'pending', attempts = attempts - 1, next_at = :now, lease_owner = NULL, lease_until = NULL,
        updated_at = :now
    WHERE id = :id AND state = 'running' AND lease_owner = :owner AND attempts = :attempt
    """
)
_REPLAY = SQL(
    """
    UPDATE handler_runs
    SET state = 'pending', attempts = 0, next_at = :now, lease_owner = NULL, lease_until = NULL,
        finished_at = NULL, replays = replays + 1, updated_at = :now
    WHERE state IN ('dead', 'succeeded') AND id = ANY(:ids::bigint[])
    RETURNING id
    """
)
# Runs that ended dead without running because a dependency of theirs had died.
_NEVER_RUN = SQL(
    "SELECT id FROM handler_runs WHERE prediction_id = :prediction_id AND status = :status AND state = 'dead' "
    "AND attempts = 0 AND last_error LIKE :not_run"
)
# Dispatchers of other processes hear of replayed runs at commit; SQLite's dispatchers poll the file.
_ANNOUNCE = SQL(sqlite=None, postgres=f"SELECT pg_notify('{RUNS_CHANNEL}', '')")
_RUN = SQL("SELECT * FROM handler_runs WHERE id = :id")


def _pairs(after: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    pairs = [(handler, dependency) for handler, deps in after.items() for dependency in deps]
    return {"after_handlers": [h for h, _d in pairs], "after_dependencies": [d for _h, d in pairs]}


def _end_blocked(pairs: Mapping[str, list[str]], *, now: float) -> Query[None]:
    """Pending runs one of whose dependencies ended dead are never run: they end dead, saying which one.

    Repeated until nothing changes, so a chain (a after b after c) ends in one claim when c dies.
    """
    while (yield _END_BLOCKED_SQL(now=now, not_run=NOT_RUN_PREFIX, **pairs)).rowcount:
        pass


def claim(
    *,
    owner: str,
    now: float,
    lease_seconds: float,
    handlers: Sequence[str],
    max_attempts: Mapping[str, int],
    limit: int,
    after: Mapping[str, Sequence[str]] | None = None,
) -> Query[list[ClaimedRun]]:
    """Lease up to ``limit`` due runs of the given handlers: pending ones and those whose lease expired.

    A run whose handler runs ``after`` others waits until their runs for the same outcome have succeeded, and
    ends dead (never run) if one of them ended dead.
    """
    if limit <= 0 or not handlers:
        return []
    pairs = _pairs(after or {})
    if pairs["after_handlers"]:
        yield from _end_blocked(pairs, now=now)
    due = (yield _DUE_SQL(now=now, handlers=list(handlers), limit=limit, **pairs)).rows
    if not due:
        return []
    ids = [row["id"] for row in due]
    expired = {row["id"] for row in due if row["state"] == "running"}
    if expired:
        yield _LOSE(now=now, error=LOST_LEASE, ids=sorted(expired))
    taken = (yield _TAKE(owner=owner, until=now + lease_seconds, now=now, ids=ids)).rows
    taken.sort(key=lambda row: ids.index(row["id"]))
    # A run taken back from a dead owner with no attempt left gets no attempt: it goes straight to dead.
    fresh = [
        row for row in taken if not (row["id"] in expired and row["attempts"] > max_attempts.get(row["handler"], 1))
    ]
    attempt_ids: dict[int, int] = {}
    if fresh:
        made = yield _ATTEMPTS(
            owner=owner, now=now, run_ids=[r["id"] for r in fresh], attempts=[r["attempts"] for r in fresh]
        )
        attempt_ids = {row["run_id"]: row["id"] for row in made.rows}
    predictions = yield from _predictions({row["prediction_id"] for row in taken})
    stored = yield from downloads_of(row["prediction_id"] for row in taken)
    claimed: list[ClaimedRun] = []
    for row in taken:
        run = ClaimedRun(
            id=row["id"],
            attempt_id=attempt_ids.get(row["id"], 0),
            prediction_id=row["prediction_id"],
            status=row["status"],
            handler=row["handler"],
            attempt=row["attempts"],
            prediction=predictions.get(row["prediction_id"], {"id": row["prediction_id"]}),
            exhausted=row["id"] not in attempt_ids,
            downloads=tuple(stored.get(row["prediction_id"], ())),
        )
        if run.exhausted:
            yield from finish(run, RunEnd(state="dead", outcome="lost", error=LOST_LEASE), owner=owner, now=now)
        claimed.append(run)
    return claimed


def _predictions(ids: Iterable[str]) -> Query[dict[str, dict[str, Any]]]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {row["id"]: row for row in (yield _PREDICTIONS(ids=wanted)).rows}


def renew(*, owner: str, run_ids: Sequence[int], lease_until: float) -> Query[set[int]]:
    """Extend the leases this owner still holds; the ids returned are the ones it still holds."""
    if not run_ids:
        return set()
    return set((yield _RENEW(until=lease_until, owner=owner, ids=list(run_ids))).column("id"))


def finish(run: ClaimedRun, end: RunEnd, *, owner: str, now: float) -> Query[bool]:
    """Record an attempt's end; the run moves only if this owner still holds this attempt's lease."""
    yield _END_ATTEMPT(
        now=now,
        duration_ms=end.duration_ms,
        outcome=end.outcome,
        error=end.error,
        traceback=end.traceback,
        id=run.attempt_id,
    )
    moved = yield _FINISH(
        state=end.state,
        next_at=end.next_at,
        error=end.error,
        now=now,
        id=run.id,
        owner=owner,
        attempt=run.attempt,
    )
    return moved.rowcount == 1


def release(runs: Sequence[ClaimedRun], *, owner: str, now: float) -> Query[int]:
    """Give back runs interrupted by a shutdown: pending again at once, the attempt not counted."""
    released = 0
    for run in runs:
        yield _RELEASE_ATTEMPT(now=now, id=run.attempt_id)
        released += (yield _RELEASE(now=now, id=run.id, owner=owner, attempt=run.attempt)).rowcount
    return released


def select_runs(
    *,
    run_id: int | None = None,
    prediction_id: str | None = None,
    state: str | None = None,
    handler: str | None = None,
    since: float | None = None,
    before_id: int | None = None,
    limit: int | None = None,
) -> Query[list[dict[str, Any]]]:
    """Runs matching every filter given, newest first; ``since`` applies to when they last changed."""
    clause, params = where(
        {
            "id = :run_id": run_id,
            "prediction_id = :prediction_id": prediction_id,
            "state = :state": state,
            "handler = :handler": handler,
            "updated_at >= :since": since,
            "id < :before_id": before_id,
        }
    )
    tail = "" if limit is None else " LIMIT :limit"
    sql = SQL(f"SELECT * FROM handler_runs {clause} ORDER BY id DESC{tail}")  # noqa: S608 (fixed clauses only)
    return (yield sql(**params, limit=limit)).rows


def replay(run_ids: Sequence[int], *, now: float) -> Query[list[int]]:
    """Make finished runs (dead or succeeded) pending again with fresh attempts; others are left alone."""
    if not run_ids:
        return []
    replayed = sorted((yield _REPLAY(now=now, ids=list(run_ids))).column("id"))
    if replayed:
        yield _ANNOUNCE()
    return replayed


def replay_selection(selection: RunSelection, *, now: float, dry_run: bool) -> Query[ReplayResult]:
    """Select the runs, and unless ``dry_run`` make the finished ones pending at ``now``: one transaction."""
    matched = yield from select_runs(
        run_id=selection.run_id,
        prediction_id=selection.prediction_id,
        state="dead" if selection.dead else None,
        handler=selection.handler,
        since=selection.since,
    )
    if dry_run:
        return ReplayResult(matched=matched, replayed=[], dry_run=True)
    ids = [run["id"] for run in matched]
    ids += yield from _never_run_beside(matched)
    replayed = yield from replay(ids, now=now)
    return ReplayResult(matched=matched, replayed=replayed, dry_run=False)


def _never_run_beside(matched: Sequence[Mapping[str, Any]]) -> Query[list[int]]:
    """Runs of the same outcomes that ended dead without running because a dependency had died: replaying the
    dependency gives them their turn again (they still wait for it to succeed)."""
    found: list[int] = []
    for prediction_id, status in sorted({(run["prediction_id"], run["status"]) for run in matched}):
        rows = yield _NEVER_RUN(prediction_id=prediction_id, status=status, not_run=NOT_RUN_PREFIX + "%")
        found += rows.column("id")
    return found


def get_run(run_id: int) -> Query[dict[str, Any] | None]:
    """One run with its ``attempt_history`` (a list of attempt rows, oldest first)."""
    run = (yield _RUN(id=run_id)).first()
    if run is None:
        return None
    attempts = yield from attempts_by_run([run_id])
    return {**run, "attempt_history": attempts.get(run_id, [])}
