"""Submissions (one per job the submitter sends) and their merge into ``predictions``.

Writes run inside the caller's transaction (the group-commit writer); reads take any connection.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from receiver.statuses import TERMINAL, rank

_BEGIN = """
INSERT INTO submissions (reference, job_key, model, input, webhook_url, state, attempts, created_at, sent_at,
                         updated_at)
VALUES (:reference, :job_key, :model, :input, :webhook_url, 'sending', 1, :now, :now, :now)
ON CONFLICT (reference) DO UPDATE SET
    input = excluded.input, webhook_url = excluded.webhook_url, state = 'sending', error = NULL,
    attempts = submissions.attempts + 1, sent_at = excluded.sent_at, updated_at = excluded.updated_at
WHERE submissions.state = 'failed'
RETURNING reference
"""

# The submit answer and the webhook may arrive in either order: fill the submission's columns, and set the
# status only when the row is new, so a webhook that came first is never moved backwards.
_MERGE_PREDICTION = """
INSERT INTO predictions (id, model, status, status_rank, input, reference, webhook_url, submitted_at,
                         provider_created_at, first_seen_at, updated_at)
VALUES (:id, :model, :status, :rank, :input, :reference, :webhook_url, :submitted_at, :provider_created_at,
        :now, :now)
ON CONFLICT (id) DO UPDATE SET
    model = coalesce(predictions.model, excluded.model),
    input = coalesce(excluded.input, predictions.input),
    reference = coalesce(predictions.reference, excluded.reference),
    webhook_url = coalesce(predictions.webhook_url, excluded.webhook_url),
    submitted_at = coalesce(predictions.submitted_at, excluded.submitted_at),
    provider_created_at = coalesce(predictions.provider_created_at, excluded.provider_created_at)
"""


def begin(
    conn: sqlite3.Connection,
    *,
    reference: str,
    job_key: str | None,
    model: str,
    input_json: str,
    webhook_url: str | None,
    now: float,
) -> bool:
    """Record the intent to send, before sending. False: this reference exists and is not a failure."""
    row = conn.execute(
        _BEGIN,
        {
            "reference": reference,
            "job_key": job_key,
            "model": model,
            "input": input_json,
            "webhook_url": webhook_url,
            "now": now,
        },
    ).fetchone()
    return row is not None


def claimed_by(conn: sqlite3.Connection, prediction_id: str) -> str | None:
    """The reference of the submission that already owns ``prediction_id``, if any."""
    row = conn.execute(
        "SELECT reference FROM submissions WHERE prediction_id = ? "
        "UNION ALL SELECT reference FROM predictions WHERE id = ? AND reference IS NOT NULL LIMIT 1",
        (prediction_id, prediction_id),
    ).fetchone()
    return None if row is None else str(row[0])


def owned_ids(conn: sqlite3.Connection, prediction_ids: list[str]) -> set[str]:
    """Which of ``prediction_ids`` a submission or a referenced webhook already ties to one of our jobs."""
    owned: set[str] = set()
    for start in range(0, len(prediction_ids), 400):
        chunk = prediction_ids[start : start + 400]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT prediction_id FROM submissions WHERE prediction_id IN ({marks}) "  # noqa: S608
            f"UNION SELECT id FROM predictions WHERE id IN ({marks}) AND reference IS NOT NULL",
            [*chunk, *chunk],
        )
        owned.update(str(row[0]) for row in rows)
    return owned


def record_submitted(
    conn: sqlite3.Connection,
    *,
    reference: str,
    prediction: dict[str, Any],
    resolved_by: str,
    now: float,
    terminal_statuses: tuple[str, ...],
) -> bool:
    """Tie ``reference`` to the provider's task and merge it into ``predictions``.

    False (and nothing written) when another submission already owns that task: a lookup must not give
    one task to two jobs.
    """
    owner = claimed_by(conn, prediction["id"])
    if owner is not None and owner != reference:
        return False
    sub = conn.execute(
        "UPDATE submissions SET state = 'submitted', prediction_id = ?, resolved_by = ?, error = NULL, "
        "updated_at = ? WHERE reference = ? RETURNING model, input, webhook_url, sent_at",
        (prediction["id"], resolved_by, now, reference),
    ).fetchone()
    if sub is None:
        raise LookupError(f"no submission with reference {reference}")
    status = prediction.get("status") if isinstance(prediction.get("status"), str) else None
    status_rank = rank(status, terminal_statuses)
    if status_rank >= TERMINAL:
        # A final status enters only through the ingest path, which also enqueues the handler runs.
        status, status_rank = "created", rank("created", terminal_statuses)
    created = prediction.get("created_at")
    conn.execute(
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


def record_outcome(conn: sqlite3.Connection, *, reference: str, state: str, error: str, now: float) -> None:
    """Mark a submission ``unknown`` (the task may exist) or ``failed`` (no task was created)."""
    conn.execute(
        "UPDATE submissions SET state = ?, error = ?, updated_at = ? WHERE reference = ? AND state <> 'submitted'",
        (state, error, now, reference),
    )


def get(conn: sqlite3.Connection, reference: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM submissions WHERE reference = ?", (reference,)).fetchone()
    return None if row is None else dict(row)


def by_job_keys(conn: sqlite3.Connection, job_keys: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(job_keys), 500):
        chunk = job_keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT * FROM submissions WHERE job_key IN ({marks})", chunk):  # noqa: S608
            found[row["job_key"]] = dict(row)
    return found


def doubtful(conn: sqlite3.Connection, *, sent_before: float, limit: int = 500) -> list[dict[str, Any]]:
    """Submissions whose outcome is not known: sent with no answer recorded, or answered ambiguously."""
    rows = conn.execute(
        "SELECT * FROM submissions WHERE state IN ('sending', 'unknown') AND sent_at < ? ORDER BY sent_at LIMIT ?",
        (sent_before, limit),
    ).fetchall()
    return [dict(row) for row in rows]
