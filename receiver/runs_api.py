"""The JSON API over handler runs: list, inspect, replay one, replay the dead ones.

GET  /api/runs?state=&handler=&prediction_id=&limit=&cursor=   newest first
GET  /api/runs/{id}                                            one run with its attempt history
POST /api/runs/{id}/replay                                     a dead or succeeded run becomes pending
POST /api/runs/replay-dead?handler=&since=&dry_run=            every dead run (of a handler, since a time)
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from receiver.api import MAX_ROW_ID, since_param, whole_number
from receiver.dispatch.replay import ReplayResult, Selection, replay_job
from receiver.errors import BadRequest, Conflict, NotFound
from receiver.store import runs as store

MAX_LIMIT = 500


def _int(raw: str | None, name: str, default: int | None, *, low: int = 1, high: int = 2**62) -> int | None:
    if raw is None or raw == "":
        return default
    value = whole_number(raw)
    if value is None or not low <= value <= high:
        raise BadRequest(f"query parameter {name}={raw!r} must be an integer from {low} to {high}")
    return value


def _run_id(request: Request) -> int:
    raw = request.path_params["run_id"]
    value = whole_number(raw)
    if value is None or value < 1:
        raise BadRequest(f"run id {raw!r} in the path must be an integer from 1 to {MAX_ROW_ID}")
    return value


def _wake(request: Request) -> None:
    """Replayed runs start at once in this process, without waiting for the poll."""
    ingestor = getattr(request.app.state, "ingestor", None)
    if ingestor is not None:
        ingestor.runs_waiting.set()


async def list_runs(request: Request) -> JSONResponse:
    params = request.query_params
    state = params.get("state") or None
    if state is not None and state not in store.STATES:
        raise BadRequest(f"query parameter state={state!r} must be one of {', '.join(store.STATES)}")
    limit = _int(params.get("limit"), "limit", 50, high=MAX_LIMIT)
    before = _int(params.get("cursor"), "cursor", None)
    rows = await request.app.state.reader.run(
        lambda conn: store.select_runs(
            conn,
            state=state,
            handler=params.get("handler") or None,
            prediction_id=params.get("prediction_id") or None,
            before_id=before,
            limit=limit,
        )
    )
    next_cursor = str(rows[-1]["id"]) if rows and len(rows) == limit else None
    return JSONResponse({"runs": rows, "next_cursor": next_cursor})


async def get_run(request: Request) -> JSONResponse:
    run_id = _run_id(request)
    item = await request.app.state.reader.run(lambda conn: store.get_run(conn, run_id))
    if item is None:
        raise NotFound(f"no handler run with id {run_id}")
    return JSONResponse(item)


async def replay_run(request: Request) -> JSONResponse:
    run_id = _run_id(request)
    now = request.app.state.ingestor.clock()
    result: ReplayResult = await request.app.state.writer.run(replay_job(Selection(run_id=run_id), now=now))
    if not result.matched:
        raise NotFound(f"no handler run with id {run_id}")
    if not result.replayed:
        state = result.matched[0]["state"]
        raise Conflict(f"run {run_id} is {state}: only a dead or succeeded run can be replayed", reason="run_not_ended")
    _wake(request)
    return JSONResponse(result.as_json())


def _dry_run(request: Request) -> bool:
    raw = request.query_params.get("dry_run", "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise BadRequest(f"query parameter dry_run={raw!r} must be true or false")
    return raw in ("true", "1")


async def _replay(request: Request, selection: Selection) -> JSONResponse:
    now = request.app.state.ingestor.clock()
    job = replay_job(selection, now=now, dry_run=_dry_run(request))
    result: ReplayResult = await request.app.state.writer.run(job)
    if result.replayed:
        _wake(request)
    return JSONResponse(result.as_json())


async def replay_dead(request: Request) -> JSONResponse:
    params = request.query_params
    selection = Selection(
        dead=True, handler=params.get("handler") or None, since=since_param(params.get("since") or None)
    )
    return await _replay(request, selection)


async def replay_prediction(request: Request) -> JSONResponse:
    params = request.query_params
    prediction_id = params.get("prediction_id")
    if not prediction_id:
        raise BadRequest("query parameter prediction_id is required")
    return await _replay(request, Selection(prediction_id=prediction_id, handler=params.get("handler") or None))
