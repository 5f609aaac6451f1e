"""Predictions: the reads of the JSON API, the dashboard, the CLI and the submitter (their writes are the
ingest path's, in ``events`` and ``postgres/ingest``, and the submitter's merge, in ``submissions``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from receiver.correlation import redact
from receiver.delivery import decode_column
from receiver.statuses import TERMINAL
from receiver.store.downloads import list_downloads
from receiver.store.query import SQL, Query, where

_JSON_COLUMNS = ("input", "outputs", "has_nsfw_contents", "timings")

_BY_ID = SQL("SELECT * FROM predictions WHERE id = :id")
_EVENTS = SQL("SELECT * FROM events WHERE prediction_id = :id ORDER BY id")
_QUARANTINED = SQL("SELECT * FROM quarantine WHERE prediction_id = :id ORDER BY id")
_RUNS = SQL("SELECT * FROM handler_runs WHERE prediction_id = :id ORDER BY id")
_ATTEMPTS = SQL("SELECT * FROM run_attempts WHERE run_id = ANY(:ids::bigint[]) ORDER BY run_id, id")
_MODELS_OF = SQL("SELECT id, model FROM predictions WHERE id = ANY(:ids::text[])")
_WITH_REFERENCE = SQL("SELECT id FROM predictions WHERE reference = :reference LIMIT 1")
_STATE = SQL("SELECT status, status_rank, reference FROM predictions WHERE id = :id")
_OPEN = SQL(
    "SELECT id, model, status, reference, submitted_at, first_seen_at FROM predictions "
    "WHERE status_rank < :final AND coalesce(submitted_at, first_seen_at) BETWEEN :seen_after AND :seen_before "
    "ORDER BY coalesce(submitted_at, first_seen_at) LIMIT :limit"
)
# A range on the primary key (exact, case-sensitive, indexed), where LIKE would ignore case. PostgreSQL's
# column sorts in byte order ("C" collation), as SQLite's does.
_IDS_STARTING = "SELECT id FROM predictions WHERE id >= :p AND id < :p || {char}(1114111) ORDER BY id LIMIT :limit"
_STARTING = SQL(sqlite=_IDS_STARTING.format(char="char"), postgres=_IDS_STARTING.format(char="chr"))


def as_prediction(row: dict[str, Any]) -> dict[str, Any]:
    """A predictions row as the seam returns it: JSON columns decoded, the rank dropped, the webhook URL's
    token redacted."""
    item = dict(row)
    for column in _JSON_COLUMNS:
        item[column] = decode_column(column, item.get(column))
    item.pop("status_rank", None)
    if item.get("webhook_url"):
        item["webhook_url"] = redact(item["webhook_url"])
    return item


def _with_text_body(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "body": bytes(row["body"]).decode("utf-8", "replace")}


def _selection(
    status: str | None, model: str | None, since: float | None = None, before: tuple[float, str] | None = None
) -> tuple[str, dict[str, Any]]:
    return where(
        {
            "status = :status": status,
            "model = :model": model,
            "updated_at >= :since": since,
            "(updated_at < :before_at OR (updated_at = :before_at AND id < :before_id))": before,
        }
    )


def list_predictions(
    *,
    status: str | None = None,
    model: str | None = None,
    since: float | None = None,
    before: tuple[float, str] | None = None,
    limit: int = 50,
) -> Query[list[dict[str, Any]]]:
    """Newest-updated first; ``before`` is the (updated_at, id) cursor of the last row already seen."""
    clause, params = _selection(status, model, since, before)
    found = yield SQL(f"SELECT * FROM predictions {clause} ORDER BY updated_at DESC, id DESC LIMIT :limit")(  # noqa: S608
        **params, limit=limit
    )
    return [as_prediction(row) for row in found.rows]


def count_predictions(*, status: str | None = None, model: str | None = None) -> Query[int]:
    clause, params = _selection(status, model)
    found = yield SQL(f"SELECT count(*) AS n FROM predictions {clause}")(**params)  # noqa: S608 (fixed clauses)
    return int(found.rows[0]["n"])


def models_of(prediction_ids: Sequence[str]) -> Query[dict[str, str | None]]:
    """prediction id -> model, for lists of runs that show which model each belongs to."""
    if not prediction_ids:
        return {}
    found = yield _MODELS_OF(ids=list(prediction_ids))
    return {row["id"]: row["model"] for row in found.rows}


def get_prediction(prediction_id: str) -> Query[dict[str, Any] | None]:
    row = (yield _BY_ID(id=prediction_id)).first()
    if row is None:
        return None
    item = as_prediction(row)
    item["events"] = [_with_text_body(event) for event in (yield _EVENTS(id=prediction_id)).rows]
    item["quarantined"] = [_with_text_body(q) for q in (yield _QUARANTINED(id=prediction_id)).rows]
    runs = (yield _RUNS(id=prediction_id)).rows
    attempts = yield from attempts_by_run([run["id"] for run in runs])
    item["handler_runs"] = [{**run, "attempt_history": attempts.get(run["id"], [])} for run in runs]
    item["downloads"] = yield from list_downloads(prediction_id)
    return item


def attempts_by_run(run_ids: list[int]) -> Query[dict[int, list[dict[str, Any]]]]:
    """Each run's attempt rows, oldest first."""
    found: dict[int, list[dict[str, Any]]] = {}
    if run_ids:
        for row in (yield _ATTEMPTS(ids=run_ids)).rows:
            found.setdefault(row["run_id"], []).append(row)
    return found


def prediction_with_reference(reference: str) -> Query[str | None]:
    """The task a webhook carrying ``reference`` already told us about, if one did."""
    row = (yield _WITH_REFERENCE(reference=reference)).first()
    return None if row is None else str(row["id"])


def open_predictions(*, seen_before: float, seen_after: float, limit: int = 500) -> Query[list[dict[str, Any]]]:
    """Predictions without a final status, first seen (or submitted) in the window, oldest first."""
    found = yield _OPEN(final=TERMINAL, seen_after=seen_after, seen_before=seen_before, limit=limit)
    return found.rows


def ids_starting(prefix: str, *, limit: int) -> Query[list[str]]:
    """Prediction ids that start with ``prefix`` (a shortened id, as listings show them), sorted."""
    return [str(row["id"]) for row in (yield _STARTING(p=prefix, limit=limit)).rows]


def prediction_state(prediction_id: str) -> Query[dict[str, Any] | None]:
    """Status, rank and reference of one prediction: the cheap read a waiter repeats."""
    return (yield _STATE(id=prediction_id)).first()
