"""The JSON API over the ledger: ``GET /api/predictions`` and ``GET /api/predictions/{id}``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from receiver.errors import BadRequest, NotFound
from receiver.store import queries

MAX_LIMIT = 500


def _cursor(raw: str | None) -> tuple[float, str] | None:
    if not raw:
        return None
    stamp, _, prediction_id = raw.partition(":")
    try:
        return float(stamp), prediction_id
    except ValueError:
        raise BadRequest(f"query parameter cursor={raw!r} is not a cursor this API returned") from None


def _limit(raw: str | None) -> int:
    if raw is None:
        return 50
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"query parameter limit={raw!r} must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _since(raw: str | None) -> float | None:
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
            since=_since(params.get("since")),
            before=_cursor(params.get("cursor")),
            limit=limit,
        )
    )
    next_cursor = f"{rows[-1]['updated_at']!r}:{rows[-1]['id']}" if len(rows) == limit else None
    return JSONResponse({"predictions": rows, "next_cursor": next_cursor})


async def get_prediction(request: Request) -> JSONResponse:
    prediction_id = request.path_params["prediction_id"]
    item = await request.app.state.reader.run(lambda conn: queries.get_prediction(conn, prediction_id))
    if item is None:
        raise NotFound(f"no prediction with id {prediction_id!r} in the ledger")
    return JSONResponse(item)
