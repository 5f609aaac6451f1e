"""Submissions (one per job the submitter sends) and their merge into ``predictions``.

Writes run inside the caller's transaction (the group-commit writer); reads take any connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from receiver.statuses import TERMINAL, rank
from receiver.store.query import SQL, Query

_BEGIN = SQL(
    """
    INSERT INTO submissions (reference, job_key, model, input, webhook_url, state, attempts, created_at, sent_at,
                             updated_at)
    VALUES (:reference, :job_key, :model, :input, :webhook_url, 'sending', 1, :now, :now, :now)
    ON CONFLICT (reference) DO UPDATE SET
        input = excluded.input, webhook_url = excluded.webhook_url, state = 'sending', error = NULL,
        attempts = submissions.attempts + 1, sent_at = excluded.sent_at, updated_at = excluded.updated_at
    WHERE submissions.state = 'failed'
    RETURNING reference
    """
)

# The submit answer and the webhook may arrive in either order: fill the submission's columns, and set the
# status only when the row is new, so a webhook that came first is never moved backwards.
_MERGE_PREDICTION = SQL(
    """
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
)
_CLAIMED_BY = SQL(
    "SELECT reference FROM submissions WHERE prediction_id = :id "
    "UNION ALL SELECT reference FROM predictions WHERE id = :id AND reference IS NOT NULL LIMIT 1"
)
_OWNED = SQL(
    "SELECT prediction_id AS id FROM submissions WHERE prediction_id = ANY(:ids::text[]) "
    "UNION SELECT id FROM predictions WHERE id = ANY(:ids::text[]) AND reference IS NOT NULL"
)
_SUBMITTED = SQL(
    "UPDATE submissions SET state = 'submitted', prediction_id = :id, resolved_by = :resolved_by, error = NULL, "
    "updated_at = :now WHERE reference = :reference RETURNING model, input, webhook_url, sent_at"
)
_OUTCOME = SQL(
    "UPDATE submissions SET state = :state, error = :error, updated_at = :now "
    "WHERE reference = :reference AND state <> 'submitted'"
)
_GET = SQL("SELECT * FROM submissions WHERE reference = :reference")
_BY_JOB_KEYS = SQL("SELECT * FROM submissions WHERE job_key = ANY(:keys::text[])")
_DOUBTFUL = SQL(
    "SELECT * FROM submissions WHERE state IN ('sending', 'unknown') AND sent_at < :sent_before "
    "ORDER BY sent_at LIMIT :limit"
)


def begin(
    *, reference: str, job_key: str | None, model: str, input_json: str, webhook_url: str | None, now: float
) -> Query[bool]:
    """Record the intent to send, before sending. False: this reference exists and is not a failure."""
    found = yield _BEGIN(
        reference=reference, job_key=job_key, model=model, input=input_json, webhook_url=webhook_url, now=now
    )
    return bool(found.rows)


def claimed_by(prediction_id: str) -> Query[str | None]:
    """The reference of the submission that already owns ``prediction_id``, if any."""
    row = (yield _CLAIMED_BY(id=prediction_id)).first()
    return None if row is None else str(row["reference"])


def owned_ids(prediction_ids: Sequence[str]) -> Query[set[str]]:
    """Which of ``prediction_ids`` a submission or a referenced webhook already ties to one of our jobs."""
    if not prediction_ids:
        return set()
    return {str(row["id"]) for row in (yield _OWNED(ids=list(prediction_ids))).rows}


def merged_status(prediction: dict[str, Any], terminal_statuses: tuple[str, ...]) -> tuple[str | None, int]:
    """The status (and its rank) a submit or lookup answer may give its prediction: never a final one, which
    enters only through the ingest path (that is what enqueues the handler runs)."""
    status = prediction.get("status") if isinstance(prediction.get("status"), str) else None
    status_rank = rank(status, terminal_statuses)
    if status_rank >= TERMINAL:
        return "created", rank("created", terminal_statuses)
    return status, status_rank


def record_submitted(
    *, reference: str, prediction: dict[str, Any], resolved_by: str, now: float, terminal_statuses: tuple[str, ...]
) -> Query[bool]:
    """Tie ``reference`` to the provider's task and merge it into ``predictions``.

    False (and nothing written) when another submission already owns that task: a lookup must not give
    one task to two jobs.
    """
    owner = yield from claimed_by(prediction["id"])
    if owner is not None and owner != reference:
        return False
    sub = (yield _SUBMITTED(id=prediction["id"], resolved_by=resolved_by, now=now, reference=reference)).first()
    if sub is None:
        raise LookupError(f"no submission with reference {reference}")
    status, status_rank = merged_status(prediction, terminal_statuses)
    created = prediction.get("created_at")
    yield _MERGE_PREDICTION(
        id=prediction["id"],
        model=sub["model"],
        status=status,
        rank=status_rank,
        input=sub["input"],
        reference=reference,
        webhook_url=sub["webhook_url"],
        submitted_at=sub["sent_at"],
        provider_created_at=created if isinstance(created, str) else None,
        now=now,
    )
    return True


def record_outcome(*, reference: str, state: str, error: str, now: float) -> Query[None]:
    """Mark a submission ``unknown`` (the task may exist) or ``failed`` (no task was created)."""
    yield _OUTCOME(state=state, error=error, now=now, reference=reference)


def get(reference: str) -> Query[dict[str, Any] | None]:
    return (yield _GET(reference=reference)).first()


def by_job_keys(job_keys: Sequence[str]) -> Query[dict[str, dict[str, Any]]]:
    if not job_keys:
        return {}
    return {row["job_key"]: row for row in (yield _BY_JOB_KEYS(keys=list(job_keys))).rows}


def doubtful(*, sent_before: float, limit: int = 500) -> Query[list[dict[str, Any]]]:
    """Submissions whose outcome is not known: sent with no answer recorded, or answered ambiguously."""
    return (yield _DOUBTFUL(sent_before=sent_before, limit=limit)).rows
