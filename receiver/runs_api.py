"""The JSON API over handler runs: list, inspect, replay one, replay the dead ones.

GET  /api/runs?state=&handler=&prediction_id=&limit=&cursor=   newest first
GET  /api/runs/{id}                                            one run with its attempt history
POST /api/runs/{id}/replay                                     a dead or succeeded run becomes pending
POST /api/runs/replay-dead?handler=&since=&dry_run=            every dead run (of a handler, since a time)
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from receiver.api import since_param
from receiver.errors import BadRequest, Conflict, NotFound
from receiver.store.records import RUN_STATES, RunSelection

MAX_LIMIT = 500


def _int(raw: str | None, name: str, default: int | None, *, low: int = 1, high: int = 2**62) -> int | None:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"query parameter {name}={raw!r} must be an integer from {low} to {high}")
    return int(raw)


def _run_id(request: Request) -> int:
    raw = request.path_params["run_id"]
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequest(f"run id {raw!r} in the path must be a positive integer")
    return int(raw)


async def list_runs(request: Request) -> JSONResponse:
    params = request.query_params
    state = params.get("state") or None
    if state is not None and state not in RUN_STATES:
        raise BadRequest(f"query parameter state={state!r} must be one of {', '.join(RUN_STATES)}")
    limit = _int(params.get("limit"), "limit", 50, high=MAX_LIMIT)
    before = _int(params.get("cursor"), "cursor", None)
    rows = await request.app.state.ledger.list_runs(
        state=state,
        handler=params.get("handler") or None,
        prediction_id=params.get("prediction_id") or None,
        before_id=before,
        limit=limit,
    )
    next_cursor = str(rows[-1]["id"]) if rows and len(rows) == limit else None
    return JSONResponse({"runs": rows, "next_cursor": next_cursor})


async def get_run(request: Request) -> JSONResponse:
    run_id = _run_id(request)
    item = await request.app.state.ledger.get_run(run_id)
    if item is None:
        raise NotFound(f"no handler run with id {run_id}")
    return JSONResponse(item)


async def replay_run(request: Request) -> JSONResponse:
    run_id = _run_id(request)
    now = request.app.state.ingestor.clock()
    result = await request.app.state.ledger.replay_runs(RunSelection(run_id=run_id), now=now)
    if not result.matched:
        raise NotFound(f"no handler run with id {run_id}")
    if not result.replayed:
        state = result.matched[0]["state"]
        raise Conflict(f"run {run_id} is {state}: only a dead or succeeded run can be replayed", reason="run_not_ended")
    return JSONResponse(result.as_json())


def _dry_run(request: Request) -> bool:
    raw = request.query_params.get("dry_run", "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise BadRequest(f"query parameter dry_run={raw!r} must be true or false")
    return raw in ("true", "1")


async def _replay(request: Request, selection: RunSelection) -> JSONResponse:
    now = request.app.state.ingestor.clock()
    result = await request.app.state.ledger.replay_runs(selection, now=now, dry_run=_dry_run(request))
    return JSONResponse(result.as_json())


async def replay_dead(request: Request) -> JSONResponse:
    params = request.query_params
    selection = RunSelection(
        dead=True, handler=params.get("handler") or None, since=since_param(params.get("since") or None)
    )
    return await _replay(request, selection)


async def replay_prediction(request: Request) -> JSONResponse:
    params = request.query_params
    prediction_id = params.get("prediction_id")
    if not prediction_id:
        raise BadRequest("query parameter prediction_id is required")
    return await _replay(request, RunSelection(prediction_id=prediction_id, handler=params.get("handler") or None))
