"""Events and quarantine: the write path of a delivery (event, prediction transition and outbox rows, inside the
caller's transaction) and the signed deliveries kept aside."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from receiver.delivery import Delivery
from receiver.errors import TokenMismatch
from receiver.statuses import TERMINAL, rank
from receiver.store.connection import claimed_by
from receiver.store.records import IngestResult, Quarantined


def moves_forward(new: str, old: str) -> str:
    """SQL: whether a status of rank ``new`` may replace one of rank ``old``: only forward (or a refresh of a
    non-final status); the first final status wins. One text for every statement of every backend, so they
    never disagree."""
    return f"({new} > {old} OR ({new} = {old} AND {new} < {TERMINAL}))"


def prediction_moves(row: str) -> str:
    """SQL (both backends' dialect): what a delivery's upsert does to the prediction's existing ``row``: the
    ``ON CONFLICT (id) DO UPDATE`` clause, allowed only when the status moves forward."""
    return f"""ON CONFLICT (id) DO UPDATE SET
    model = coalesce(excluded.model, {row}.model),
    status = excluded.status,
    status_rank = excluded.status_rank,
    input = coalesce(excluded.input, {row}.input),
    outputs = coalesce(excluded.outputs, {row}.outputs),
    error = excluded.error,
    has_nsfw_contents = coalesce(excluded.has_nsfw_contents, {row}.has_nsfw_contents),
    timings = coalesce(excluded.timings, {row}.timings),
    provider_created_at = coalesce({row}.provider_created_at, excluded.provider_created_at),
    reference = coalesce({row}.reference, excluded.reference),
    updated_at = excluded.updated_at,
    completed_at = excluded.completed_at,
    last_event_id = excluded.last_event_id
WHERE {moves_forward("excluded.status_rank", f"{row}.status_rank")}"""


# The event, with what the prediction's row will do with it decided before that row is touched: `applied` is
# true unless an existing row refuses the move, `conflict` when another body already came under this
# webhook-id. A repeat of the same (webhook-id, body) only bumps `duplicates`; RETURNING reads the stored row.
_INSERT_EVENT = f"""
INSERT INTO events (webhook_id, body_sha256, prediction_id, status, source, applied, conflict,
                    webhook_timestamp, reference, received_at, body)
VALUES (:webhook_id, :body_sha256, :prediction_id, :status, :source,
        NOT EXISTS (SELECT 1 FROM predictions AS p WHERE p.id = :prediction_id
                    AND NOT {moves_forward(":rank", "p.status_rank")}),
        EXISTS (SELECT 1 FROM events AS e WHERE e.webhook_id = :webhook_id),
        :webhook_timestamp, :reference, :now, :body)
ON CONFLICT (webhook_id, body_sha256) DO UPDATE
    SET duplicates = duplicates + 1, last_duplicate_at = excluded.received_at
RETURNING id, duplicates, applied, conflict
"""  # noqa: S608 (interpolates constants, never input)

# The state machine in one statement, run only for an event marked applied, whose move it then makes.
_UPSERT_PREDICTION = f"""
INSERT INTO predictions (id, model, status, status_rank, input, outputs, error, has_nsfw_contents, timings,
                         provider_created_at, reference, first_seen_at, updated_at, completed_at, last_event_id)
VALUES (:id, :model, :status, :rank, :input, :outputs, :error, :has_nsfw_contents, :timings,
        :provider_created_at, :reference, :now, :now, :completed_at, :event_id)
{prediction_moves("predictions")}
"""  # noqa: S608 (interpolates constants, never input)

_ENQUEUE_RUN = """
INSERT INTO handler_runs (prediction_id, status, handler, state, next_at, created_at, updated_at)
VALUES (?, ?, ?, 'pending', ?, ?, ?)
ON CONFLICT (prediction_id, status, handler) DO NOTHING
"""


# Whether a reference already belongs to another prediction than this one (its token vouches for that one only).
_CLAIMED_ELSEWHERE = """
SELECT 1 FROM submissions WHERE reference = :reference AND prediction_id IS NOT NULL AND prediction_id <> :id
UNION ALL
SELECT 1 FROM predictions WHERE reference = :reference AND id <> :id
LIMIT 1
"""


def check_reference(conn: sqlite3.Connection, prediction_id: str, reference: str | None) -> None:
    """Refuse a webhook for one of our jobs that does not carry that job's ``ref`` (whose token the endpoint has
    checked), and a ``ref`` that belongs to another job: a leaked provider secret alone must not forge our events."""
    params = {"reference": reference, "id": prediction_id}
    refuse_reference(
        prediction_id,
        reference,
        owner=claimed_by(conn, prediction_id),
        claimed_elsewhere=lambda: conn.execute(_CLAIMED_ELSEWHERE, params).fetchone() is not None,
    )


def refuse_reference(
    prediction_id: str, reference: str | None, *, owner: str | None, claimed_elsewhere: Callable[[], bool]
) -> None:
    """The decision of ``check_reference`` (every backend's): raise TokenMismatch, or return."""
    if owner is not None and reference != owner:
        raise TokenMismatch(
            f"prediction {prediction_id!r} was submitted by this service: its delivery must carry the ref and "
            "token of the webhook URL it was submitted with"
        )
    if owner is None and reference is not None and claimed_elsewhere():
        raise TokenMismatch(f"query parameter ref={reference} belongs to another prediction than {prediction_id!r}")


def record_delivery(
    conn: sqlite3.Connection,
    delivery: Delivery,
    *,
    now: float,
    terminal_statuses: tuple[str, ...],
    handlers: Sequence[str],
) -> IngestResult:
    """Store one delivery and apply it; a final status enqueues a run per name in ``handlers``. The caller
    owns the transaction (the writer's group commit). A webhook refused by ``check_reference`` raises before
    anything is written."""
    if delivery.source == "webhook":
        check_reference(conn, delivery.prediction_id, delivery.reference)
    new_rank = rank(delivery.status, terminal_statuses)
    event_id, duplicates, applied, conflict = conn.execute(
        _INSERT_EVENT,
        {
            "webhook_id": delivery.webhook_id,
            "body_sha256": delivery.body_sha256,
            "prediction_id": delivery.prediction_id,
            "status": delivery.status,
            "source": delivery.source,
            "rank": new_rank,
            "webhook_timestamp": delivery.webhook_timestamp,
            "reference": delivery.reference,
            "now": now,
            "body": delivery.body,
        },
    ).fetchone()
    if duplicates:
        return IngestResult(event_id=event_id, duplicate=True)
    # The provider's webhook-id may equal the task id, so one id can carry several genuine bodies: each is
    # kept, flagged `conflict`, rather than the second dropped as a duplicate.
    if applied:
        conn.execute(
            _UPSERT_PREDICTION,
            {
                **delivery.fields,
                "id": delivery.prediction_id,
                "model": delivery.model,
                "status": delivery.status,
                "rank": new_rank,
                "reference": delivery.reference,
                "now": now,
                "completed_at": now if new_rank == TERMINAL else None,
                "event_id": event_id,
            },
        )
    enqueued = 0
    if applied and new_rank == TERMINAL and delivery.status is not None:
        enqueued = enqueue_runs(conn, delivery.prediction_id, delivery.status, handlers, now=now)
    return IngestResult(
        event_id=event_id, duplicate=False, conflict=bool(conflict), applied=bool(applied), runs_enqueued=enqueued
    )


def enqueue_runs(conn: sqlite3.Connection, prediction_id: str, status: str, names: Sequence[str], *, now: float) -> int:
    """Add one pending run per handler named; existing runs for the same outcome are left alone."""
    if not names:
        return 0
    before = conn.total_changes
    conn.executemany(_ENQUEUE_RUN, [(prediction_id, status, name, now, now, now) for name in names])
    return conn.total_changes - before


def record_quarantine(conn: sqlite3.Connection, item: Quarantined, *, now: float) -> int:
    """Keep a signed delivery that cannot become an event; repeats only bump its count."""
    (row_id,) = conn.execute(
        """
        INSERT INTO quarantine (webhook_id, body_sha256, reason, detail, prediction_id, webhook_timestamp,
                                received_at, last_seen_at, body)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (webhook_id, body_sha256, reason) DO UPDATE
            SET count = count + 1, last_seen_at = excluded.last_seen_at
        RETURNING id
        """,
        (
            item.webhook_id,
            item.body_sha256,
            item.reason,
            item.detail,
            item.prediction_id,
            item.webhook_timestamp,
            now,
            now,
            item.body,
        ),
    ).fetchone()
    return int(row_id)
