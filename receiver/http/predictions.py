"""The JSON API over the ledger: predictions (listed, filtered, one with its history) and the summary counts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from receiver.errors import NotFound
from receiver.http import params
from receiver.http.state import receiver_state


async def list_predictions(request: Request) -> JSONResponse:
    query = request.query_params
    limit = params.limit(query.get("limit"))
    rows = await receiver_state(request.app).ledger.list_predictions(
        status=query.get("status") or None,
        model=query.get("model") or None,
        since=params.since(query.get("since")),
        before=params.prediction_cursor(query.get("cursor")),
        limit=limit,
    )
    next_cursor = params.cursor_after(rows[-1]) if len(rows) == limit else None
    return JSONResponse({"predictions": rows, "next_cursor": next_cursor})


async def get_prediction(request: Request) -> JSONResponse:
    prediction_id = request.path_params["prediction_id"]
    item = await receiver_state(request.app).ledger.get_prediction(prediction_id)
    if item is None:
        raise NotFound(f"no prediction with id {prediction_id!r} in the ledger")
    return JSONResponse(item)


async def summary(request: Request) -> JSONResponse:
    """Counts per model and status, runs per handler and state, the outbox, dead runs, missed webhooks, and the
    deliveries this process refused, by reason."""
    state = receiver_state(request.app)
    stats = await state.ledger.stats(now=state.clock())
    return JSONResponse({**stats.as_json(), "refused_deliveries": state.refusals.as_json()})
