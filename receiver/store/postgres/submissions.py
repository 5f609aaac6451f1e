"""The submitter's SQL on PostgreSQL: submissions and their merge into ``predictions`` (see the SQLite twin)."""

from __future__ import annotations

from typing import Any

from receiver.statuses import TERMINAL, rank
from receiver.store.postgres.connection import Conn, fetch_all

_BEGIN = """
INSERT INTO submissions AS s (reference, job_key, model, input, webhook_url, state, attempts, created_at, sent_at,
                              updated_at)
VALUES (%(reference)s, %(job_key)s, %(model)s, %(input)s, %(webhook_url)s, 'sending', 1, %(now)s, %(now)s, %(now)s)
ON CONFLICT (reference) DO UPDATE SET
    input = excluded.input, webhook_url = excluded.webhook_url, state = 'sending', error = NULL,
    attempts = s.attempts + 1, sent_at = excluded.sent_at, updated_at = excluded.updated_at
WHERE s.state = 'failed'
RETURNING reference
"""

_MERGE_PREDICTION = """
INSERT INTO predictions AS p (id, model, status, status_rank, input, reference, webhook_url, submitted_at,
                              provider_created_at, first_seen_at, updated_at)
VALUES (%(id)s, %(model)s, %(status)s, %(rank)s, %(input)s, %(reference)s, %(webhook_url)s, %(submitted_at)s,
        %(provider_created_at)s, %(now)s, %(now)s)
ON CONFLICT (id) DO UPDATE SET
    model = coalesce(p.model, excluded.model),
    input = coalesce(excluded.input, p.input),
    reference = coalesce(p.reference, excluded.reference),
    webhook_url = coalesce(p.webhook_url, excluded.webhook_url),
    submitted_at = coalesce(p.submitted_at, excluded.submitted_at),
    provider_created_at = coalesce(p.provider_created_at, excluded.provider_created_at)
"""


async def begin(
    conn: Conn,
    *,
    reference: str,
    job_key: str | None,
    model: str,
    input_json: str,
    webhook_url: str | None,
    now: float,
) -> bool:
    """Record the intent to send, before sending. False: this reference exists and is not a failure."""
    rows = await fetch_all(
        conn,
        _BEGIN,
        {
            "reference": reference,
            "job_key": job_key,
            "model": model,
            "input": input_json,
            "webhook_url": webhook_url,
            "now": now,
        },
    )
    return bool(rows)


async def claimed_by(conn: Conn, prediction_id: str) -> str | None:
    """The reference of the submission that already owns ``prediction_id``, if any."""
    rows = await fetch_all(
        conn,
        "SELECT reference FROM submissions WHERE prediction_id = %s "
        "UNION ALL SELECT reference FROM predictions WHERE id = %s AND reference IS NOT NULL LIMIT 1",
        (prediction_id, prediction_id),
    )
    return str(rows[0]["reference"]) if rows else None


async def owned_ids(conn: Conn, prediction_ids: list[str]) -> set[str]:
    """Which of ``prediction_ids`` a submission or a referenced webhook already ties to one of our jobs."""
    rows = await fetch_all(
        conn,
        "SELECT prediction_id AS id FROM submissions WHERE prediction_id = ANY(%(ids)s::text[]) "
        "UNION SELECT id FROM predictions WHERE id = ANY(%(ids)s::text[]) AND reference IS NOT NULL",
        {"ids": prediction_ids},
    )
    return {str(row["id"]) for row in rows}


async def record_submitted(
    conn: Conn,
    *,
    reference: str,
    prediction: dict[str, Any],
    resolved_by: str,
    now: float,
    terminal_statuses: tuple[str, ...],
) -> bool:
    """Tie ``reference`` to the provider's task and merge it into ``predictions`` (False: another owns it)."""
    owner = await claimed_by(conn, prediction["id"])
    if owner is not None and owner != reference:
        return False
    subs = await fetch_all(
        conn,
        "UPDATE submissions SET state = 'submitted', prediction_id = %s, resolved_by = %s, error = NULL, "
        "updated_at = %s WHERE reference = %s RETURNING model, input, webhook_url, sent_at",
        (prediction["id"], resolved_by, now, reference),
    )
    if not subs:
        raise LookupError(f"no submission with reference {reference}")
    sub = subs[0]
    status = prediction.get("status") if isinstance(prediction.get("status"), str) else None
    status_rank = rank(status, terminal_statuses)
    if status_rank >= TERMINAL:
        # A final status enters only through the ingest path, which also enqueues the handler runs.
        status, status_rank = "created", rank("created", terminal_statuses)
    created = prediction.get("created_at")
    await conn.execute(
        _MERGE_PREDICTION,
        {
            "id": prediction["id"],
            "model": sub["model"],
            "status": status,
            "rank": status_rank,
            "input": sub["input"],
            "reference": reference,
            "webhook_url": sub["webhook_url"],
            "submitted_at": sub["sent_at"],
            "provider_created_at": created if isinstance(created, str) else None,
            "now": now,
        },
    )
    return True


async def record_outcome(conn: Conn, *, reference: str, state: str, error: str, now: float) -> None:
    """Mark a submission ``unknown`` (the task may exist) or ``failed`` (no task was created)."""
    await conn.execute(
        "UPDATE submissions SET state = %s, error = %s, updated_at = %s WHERE reference = %s AND state <> 'submitted'",
        (state, error, now, reference),
    )


async def get(conn: Conn, reference: str) -> dict[str, Any] | None:
    rows = await fetch_all(conn, "SELECT * FROM submissions WHERE reference = %s", (reference,))
    return rows[0] if rows else None


async def by_job_keys(conn: Conn, job_keys: list[str]) -> dict[str, dict[str, Any]]:
    rows = await fetch_all(conn, "SELECT * FROM submissions WHERE job_key = ANY(%s::text[])", (job_keys,))
    return {row["job_key"]: row for row in rows}


async def doubtful(conn: Conn, *, sent_before: float, limit: int = 500) -> list[dict[str, Any]]:
    """Submissions whose outcome is not known: sent with no answer recorded, or answered ambiguously."""
    return await fetch_all(
        conn,
        "SELECT * FROM submissions WHERE state IN ('sending', 'unknown') AND sent_at < %s ORDER BY sent_at LIMIT %s",
        (sent_before, limit),
    )


async def prediction_with_reference(conn: Conn, reference: str) -> str | None:
    """The task a webhook carrying ``reference`` already told us about, if one did."""
    rows = await fetch_all(conn, "SELECT id FROM predictions WHERE reference = %s LIMIT 1", (reference,))
    return str(rows[0]["id"]) if rows else None


async def open_predictions(
    conn: Conn, *, seen_before: float, seen_after: float, limit: int = 500
) -> list[dict[str, Any]]:
    """Predictions without a final status, first seen (or submitted) in the window, oldest first."""
    return await fetch_all(
        conn,
        "SELECT id, model, status, reference, submitted_at, first_seen_at FROM predictions "
        "WHERE status_rank < %s AND coalesce(submitted_at, first_seen_at) BETWEEN %s AND %s "
        "ORDER BY coalesce(submitted_at, first_seen_at) LIMIT %s",
        (TERMINAL, seen_after, seen_before, limit),
    )


async def prediction_state(conn: Conn, prediction_id: str) -> dict[str, Any] | None:
    """Status, rank and reference of one prediction: the cheap read a waiter repeats."""
    rows = await fetch_all(
        conn, "SELECT status, status_rank, reference FROM predictions WHERE id = %s", (prediction_id,)
    )
    return rows[0] if rows else None
