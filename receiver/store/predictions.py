"""Predictions: the reads of the JSON API, the dashboard, the CLI and the submitter (their writes are the
ingest path's, in ``events``, and the submitter's merge, in ``submissions``)."""

from __future__ import annotations

import sqlite3
from typing import Any

from receiver.correlation import redact
from receiver.delivery import decode_column
from receiver.statuses import TERMINAL
from receiver.store.downloads import list_downloads

_JSON_COLUMNS = ("input", "outputs", "has_nsfw_contents", "timings")


def _prediction(row: sqlite3.Row) -> dict[str, Any]:
    item = dict(row)
    for column in _JSON_COLUMNS:
        item[column] = decode_column(column, item.get(column))
    item.pop("status_rank", None)
    if item.get("webhook_url"):
        item["webhook_url"] = redact(item["webhook_url"])
    return item


def _where(
    status: str | None, model: str | None, since: float | None = None, before: tuple[float, str] | None = None
) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if status:
        clauses.append("status = ?")
        params.append(status)
    if model:
        clauses.append("model = ?")
        params.append(model)
    if since is not None:
        clauses.append("updated_at >= ?")
        params.append(since)
    if before is not None:
        clauses.append("(updated_at < ? OR (updated_at = ? AND id < ?))")
        params.extend([before[0], before[0], before[1]])
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def list_predictions(
    conn: sqlite3.Connection,
    *,
    status: str | None = None,
    model: str | None = None,
    since: float | None = None,
    before: tuple[float, str] | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Newest-updated first; ``before`` is the (updated_at, id) cursor of the last row already seen."""
    where, params = _where(status, model, since, before)
    rows = conn.execute(
        f"SELECT * FROM predictions {where} ORDER BY updated_at DESC, id DESC LIMIT ?",  # noqa: S608
        [*params, limit],
    ).fetchall()
    return [_prediction(row) for row in rows]


def count_predictions(conn: sqlite3.Connection, *, status: str | None = None, model: str | None = None) -> int:
    where, params = _where(status, model)
    return int(conn.execute(f"SELECT count(*) FROM predictions {where}", params).fetchone()[0])  # noqa: S608


def models_of(conn: sqlite3.Connection, prediction_ids: list[str]) -> dict[str, str | None]:
    """prediction id -> model, for lists of runs that show which model each belongs to."""
    if not prediction_ids:
        return {}
    marks = ",".join("?" * len(prediction_ids))
    sql = f"SELECT id, model FROM predictions WHERE id IN ({marks})"  # noqa: S608 (only marks)
    return {row["id"]: row["model"] for row in conn.execute(sql, prediction_ids)}


def get_prediction(conn: sqlite3.Connection, prediction_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM predictions WHERE id = ?", (prediction_id,)).fetchone()
    if row is None:
        return None
    item = _prediction(row)
    item["events"] = [
        {**dict(event), "body": event["body"].decode("utf-8", "replace")}
        for event in conn.execute(
            "SELECT * FROM events WHERE prediction_id = ? ORDER BY id", (prediction_id,)
        ).fetchall()
    ]
    item["quarantined"] = [
        {**dict(q), "body": q["body"].decode("utf-8", "replace")}
        for q in conn.execute(
            "SELECT * FROM quarantine WHERE prediction_id = ? ORDER BY id", (prediction_id,)
        ).fetchall()
    ]
    runs = [
        dict(run)
        for run in conn.execute(
            "SELECT * FROM handler_runs WHERE prediction_id = ? ORDER BY id", (prediction_id,)
        ).fetchall()
    ]
    attempts = _attempts_by_run(conn, [run["id"] for run in runs])
    item["handler_runs"] = [{**run, "attempt_history": attempts.get(run["id"], [])} for run in runs]
    item["downloads"] = list_downloads(conn, prediction_id)
    return item


def _attempts_by_run(conn: sqlite3.Connection, run_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    if not run_ids:
        return found
    marks = ",".join("?" * len(run_ids))
    for row in conn.execute(
        f"SELECT * FROM run_attempts WHERE run_id IN ({marks}) ORDER BY run_id, id",  # noqa: S608 (only marks)
        run_ids,
    ).fetchall():
        found.setdefault(row["run_id"], []).append(dict(row))
    return found


def prediction_with_reference(conn: sqlite3.Connection, reference: str) -> str | None:
    """The task a webhook carrying ``reference`` already told us about, if one did."""
    row = conn.execute("SELECT id FROM predictions WHERE reference = ? LIMIT 1", (reference,)).fetchone()
    return None if row is None else str(row[0])


def open_predictions(
    conn: sqlite3.Connection, *, seen_before: float, seen_after: float, limit: int = 500
) -> list[dict[str, Any]]:
    """Predictions without a final status, first seen (or submitted) in the window, oldest first."""
    rows = conn.execute(
        "SELECT id, model, status, reference, submitted_at, first_seen_at FROM predictions "
        "WHERE status_rank < ? AND coalesce(submitted_at, first_seen_at) BETWEEN ? AND ? "
        "ORDER BY coalesce(submitted_at, first_seen_at) LIMIT ?",
        (TERMINAL, seen_after, seen_before, limit),
    ).fetchall()
    return [dict(row) for row in rows]


def ids_starting(conn: sqlite3.Connection, prefix: str, *, limit: int) -> list[str]:
    """Prediction ids that start with ``prefix`` (a shortened id, as listings show them), sorted."""
    # A range on the primary key (exact, case-sensitive, indexed), where LIKE would ignore case.
    rows = conn.execute(
        "SELECT id FROM predictions WHERE id >= :p AND id < :p || char(1114111) ORDER BY id LIMIT :limit",
        {"p": prefix, "limit": limit},
    )
    return [str(row[0]) for row in rows]


def prediction_state(conn: sqlite3.Connection, prediction_id: str) -> dict[str, Any] | None:
    """Status, rank and reference of one prediction: the cheap read a waiter repeats."""
    row = conn.execute(
        "SELECT status, status_rank, reference FROM predictions WHERE id = ?", (prediction_id,)
    ).fetchone()
    return None if row is None else dict(row)
