"""Read queries of the PostgreSQL ledger for the JSON API, the dashboard and the CLI: the SQLite answers."""

from __future__ import annotations

from typing import Any

from receiver.store.postgres.connection import Conn, fetch_all
from receiver.store.postgres.runs import list_downloads
from receiver.store.predictions import _prediction


def _where(
    status: str | None, model: str | None, since: float | None = None, before: tuple[float, str] | None = None
) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if status:
        clauses.append("status = %s")
        params.append(status)
    if model:
        clauses.append("model = %s")
        params.append(model)
    if since is not None:
        clauses.append("updated_at >= %s")
        params.append(since)
    if before is not None:
        clauses.append("(updated_at, id) < (%s, %s)")
        params.extend(before)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


async def list_predictions(
    conn: Conn,
    *,
    status: str | None = None,
    model: str | None = None,
    since: float | None = None,
    before: tuple[float, str] | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Newest-updated first; ``before`` is the (updated_at, id) cursor of the last row already seen."""
    where, params = _where(status, model, since, before)
    rows = await fetch_all(
        conn,
        f"SELECT * FROM predictions {where} ORDER BY updated_at DESC, id DESC LIMIT %s",  # noqa: S608
        [*params, limit],
    )
    return [_prediction(row) for row in rows]  # type: ignore[arg-type]


async def count_predictions(conn: Conn, *, status: str | None = None, model: str | None = None) -> int:
    where, params = _where(status, model)
    rows = await fetch_all(conn, f"SELECT count(*) AS n FROM predictions {where}", params)  # noqa: S608
    return int(rows[0]["n"])


async def models_of(conn: Conn, prediction_ids: list[str]) -> dict[str, str | None]:
    """prediction id -> model, for lists of runs that show which model each belongs to."""
    if not prediction_ids:
        return {}
    rows = await fetch_all(conn, "SELECT id, model FROM predictions WHERE id = ANY(%s::text[])", (prediction_ids,))
    return {row["id"]: row["model"] for row in rows}


def _with_text_body(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "body": bytes(row["body"]).decode("utf-8", "replace")}


async def get_prediction(conn: Conn, prediction_id: str) -> dict[str, Any] | None:
    rows = await fetch_all(conn, "SELECT * FROM predictions WHERE id = %s", (prediction_id,))
    if not rows:
        return None
    item = _prediction(rows[0])  # type: ignore[arg-type]
    events = await fetch_all(conn, "SELECT * FROM events WHERE prediction_id = %s ORDER BY id", (prediction_id,))
    item["events"] = [_with_text_body(event) for event in events]
    quarantined = await fetch_all(
        conn, "SELECT * FROM quarantine WHERE prediction_id = %s ORDER BY id", (prediction_id,)
    )
    item["quarantined"] = [_with_text_body(q) for q in quarantined]
    runs = await fetch_all(conn, "SELECT * FROM handler_runs WHERE prediction_id = %s ORDER BY id", (prediction_id,))
    attempts = await _attempts_by_run(conn, [run["id"] for run in runs])
    item["handler_runs"] = [{**run, "attempt_history": attempts.get(run["id"], [])} for run in runs]
    item["downloads"] = await list_downloads(conn, prediction_id)
    return item


async def get_download(conn: Conn, download_id: int) -> dict[str, Any] | None:
    rows = await fetch_all(conn, "SELECT * FROM downloads WHERE id = %s", (download_id,))
    return rows[0] if rows else None


async def _attempts_by_run(conn: Conn, run_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    if not run_ids:
        return found
    rows = await fetch_all(
        conn, "SELECT * FROM run_attempts WHERE run_id = ANY(%s::bigint[]) ORDER BY run_id, id", (run_ids,)
    )
    for row in rows:
        found.setdefault(row["run_id"], []).append(row)
    return found


async def ids_starting(conn: Conn, prefix: str, *, limit: int) -> list[str]:
    """Prediction ids that start with ``prefix`` (a shortened id, as listings show them), sorted."""
    # A range on the primary key (byte order, "C" collation: exact, case-sensitive, indexed).
    rows = await fetch_all(
        conn,
        "SELECT id FROM predictions WHERE id >= %(p)s AND id < %(p)s || chr(1114111) ORDER BY id LIMIT %(limit)s",
        {"p": prefix, "limit": limit},
    )
    return [str(row["id"]) for row in rows]
