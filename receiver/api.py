"""The JSON API over the ledger: predictions (listed, filtered, one with its history) and the summary counts."""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from receiver.errors import BadRequest, NotFound
from receiver.store import queries
from receiver.store.stats import ledger_stats

MAX_LIMIT = 500
MAX_ROW_ID = 2**63 - 1  # SQLite's largest integer


def whole_number(raw: str) -> int | None:
    """``raw`` as a non-negative integer SQLite can hold, or ``None``: ``isdigit()`` alone accepts ``²``, which
    ``int()`` refuses, and SQLite refuses integers past 64 bits."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        return None
    value = int(raw)
    return value if value <= MAX_ROW_ID else None


def _finite(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def parse_cursor(raw: str | None) -> tuple[float, str] | None:
    if not raw:
        return None
    stamp, _, prediction_id = raw.partition(":")
    try:
        return _finite(stamp), prediction_id
    except ValueError:
        raise BadRequest(f"query parameter cursor={raw!r} is not a cursor this API returned") from None


def cursor_after(row: dict[str, Any]) -> str:
    """The cursor that continues a listing after ``row``."""
    return f"{row['updated_at']!r}:{row['id']}"


def _limit(raw: str | None) -> int:
    if raw is None:
        return 50
    value = whole_number(raw)
    if value is None or not 1 <= value <= MAX_LIMIT:
        raise BadRequest(f"query parameter limit={raw!r} must be an integer from 1 to {MAX_LIMIT}")
    return value


def since_param(raw: str | None) -> float | None:
    """The ``since`` query parameter (Unix seconds) of the JSON API's listings."""
    if raw is None:
        return None
    try:
        return _finite(raw)
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
    """Counts per model and status, runs per handler and state, the outbox, dead runs and missed webhooks."""
    now = request.app.state.ingestor.clock()
    stats = await request.app.state.reader.run(lambda conn: ledger_stats(conn, now=now))
    return JSONResponse(stats.as_json())
