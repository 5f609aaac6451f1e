"""The JSON API over the ledger: predictions (listed, filtered, one with its history) and the summary counts."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from receiver.errors import BadRequest, NotFound
from receiver.store import queries
from receiver.store.stats import ledger_stats

MAX_LIMIT = 500


def parse_cursor(raw: str | None) -> tuple[float, str] | None:
    if not raw:
        return None
    stamp, _, prediction_id = raw.partition(":")
    try:
        return float(stamp), prediction_id
    except ValueError:
        raise BadRequest(f"query parameter cursor={raw!r} is not a cursor this API returned") from None


def cursor_after(row: dict[str, Any]) -> str:
    """The cursor that continues a listing after ``row``."""
    return f"{row['updated_at']!r}:{row['id']}"


def _limit(raw: str | None) -> int:
    if raw is None:
        return 50
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"query parameter limit={raw!r} must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def since_param(raw: str | None) -> float | None:
    """The ``since`` query parameter (Unix seconds) of the JSON API's listings."""
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise BadRequest(f"query parameter since={raw!r} must be Unix seconds") from None


async def list_predictions(request: Request) -> JSONResponse:
    params = request.query_params
    limit = _limit(params.get("limit"))
    rows = await request.app.state.reader.run(
        lambda conn: queries.list_predictions(
            conn,
            status=params.get("status"),
            model=params.get("model"),
            since=since_param(params.get("since")),
            before=parse_cursor(params.get("cursor")),
            limit=limit,
        )
    )
    next_cursor = cursor_after(rows[-1]) if len(rows) == limit else None
    return JSONResponse({"predictions": rows, "next_cursor": next_cursor})


async def get_prediction(request: Request) -> JSONResponse:
    prediction_id = request.path_params["prediction_id"]
    item = await request.app.state.reader.run(lambda conn: queries.get_prediction(conn, prediction_id))
    if item is None:
        raise NotFound(f"no prediction with id {prediction_id!r} in the ledger")
    return JSONResponse(item)


async def summary(request: Request) -> JSONResponse:
    """Counts per model and status, runs per handler and state, the outbox, dead runs, missed webhooks, and the
    deliveries this process refused, by reason."""
    now = request.app.state.ingestor.clock()
    stats = await request.app.state.reader.run(lambda conn: ledger_stats(conn, now=now))
    return JSONResponse({**stats.as_json(), "refused_deliveries": request.app.state.refusals.as_json()})
