"""The JSON API over handler runs: list, inspect, replay one, replay the dead ones.

GET  /api/runs?state=&handler=&prediction_id=&limit=&cursor=   newest first
GET  /api/runs/{id}                                            one run with its attempt history
POST /api/runs/{id}/replay                                     a dead or succeeded run becomes pending
POST /api/runs/replay-dead?handler=&since=&dry_run=            every dead run (of a handler, since a time)
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from receiver.errors import BadRequest, Conflict, NotFound
from receiver.http import params
from receiver.http.state import receiver_state
from receiver.store.records import RUN_STATES, RunSelection


async def list_runs(request: Request) -> JSONResponse:
    query = request.query_params
    state = query.get("state") or None
    if state is not None and state not in RUN_STATES:
        raise BadRequest(f"query parameter state={state!r} must be one of {', '.join(RUN_STATES)}")
    limit = params.limit(query.get("limit"))
    before = params.integer(query.get("cursor"), "cursor", None)
    rows = await receiver_state(request.app).ledger.list_runs(
        state=state,
        handler=query.get("handler") or None,
        prediction_id=query.get("prediction_id") or None,
        before_id=before,
        limit=limit,
    )
    next_cursor = str(rows[-1]["id"]) if rows and len(rows) == limit else None
    return JSONResponse({"runs": rows, "next_cursor": next_cursor})


async def get_run(request: Request) -> JSONResponse:
    run_id = params.run_id(request.path_params["run_id"])
    item = await receiver_state(request.app).ledger.get_run(run_id)
    if item is None:
        raise NotFound(f"no handler run with id {run_id}")
    return JSONResponse(item)


async def replay_run(request: Request) -> JSONResponse:
    run_id = params.run_id(request.path_params["run_id"])
    state = receiver_state(request.app)
    result = await state.ledger.replay_runs(RunSelection(run_id=run_id), now=state.clock())
    if not result.matched:
        raise NotFound(f"no handler run with id {run_id}")
    if not result.replayed:
        state = result.matched[0]["state"]
        raise Conflict(f"run {run_id} is {state}: only a dead or succeeded run can be replayed", reason="run_not_ended")
    return JSONResponse(result.as_json())


async def _replay(request: Request, selection: RunSelection) -> JSONResponse:
    state = receiver_state(request.app)
    dry_run = params.boolean(request.query_params.get("dry_run"), "dry_run")
    result = await state.ledger.replay_runs(selection, now=state.clock(), dry_run=dry_run)
    return JSONResponse(result.as_json())


async def replay_dead(request: Request) -> JSONResponse:
    query = request.query_params
    selection = RunSelection(dead=True, handler=query.get("handler") or None, since=params.since(query.get("since")))
    return await _replay(request, selection)


async def replay_prediction(request: Request) -> JSONResponse:
    query = request.query_params
    prediction_id = query.get("prediction_id")
    if not prediction_id:
        raise BadRequest("query parameter prediction_id is required")
    return await _replay(request, RunSelection(prediction_id=prediction_id, handler=query.get("handler") or None))
