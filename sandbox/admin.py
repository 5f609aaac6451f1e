"""The sandbox's own routes under ``/_sandbox``: what it sent, its faults, outages, whether it has settled."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse

from sandbox.api import json_object, sandbox_of
from sandbox.envelope import InvalidRequest
from sandbox.faults import FAULTS, FaultError, parse_rates


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def status(request: Request) -> JSONResponse:
    """Counts a test waits on: ``busy`` is zero once every task has ended and every delivery is settled."""
    sandbox = sandbox_of(request)
    outage = max(0.0, sandbox.courier.outage_until - time.monotonic())
    return JSONResponse(
        {
            "tasks": len(sandbox.tasks),
            "open_tasks": sandbox.tasks.open_count(),
            "busy": sandbox.busy(),
            "tasks_by_status": sandbox.tasks.count_by_status(),
            "deliveries": len(sandbox.log),
            "requests": len(sandbox.requests),
            "fault_rates": sandbox.fault_rates,
            "api_fault_rates": sandbox.api_fault_rates,
            "outage_seconds_left": round(outage, 3),
        }
    )


def _after(request: Request) -> int:
    raw_after = request.query_params.get("after", "0")
    if not raw_after.isdigit():
        raise InvalidRequest(f"query parameter after={raw_after!r} must be a record number (seq)")
    return int(raw_after)


async def deliveries(request: Request) -> JSONResponse:
    """``GET /_sandbox/deliveries[?task_id=…][&after=SEQ]``: the delivery log."""
    records = sandbox_of(request).log.query(task_id=request.query_params.get("task_id"), after=_after(request))
    return JSONResponse({"deliveries": records})


async def requests(request: Request) -> JSONResponse:
    """``GET /_sandbox/requests[?task_id=…][&after=SEQ]``: the API request log."""
    records = sandbox_of(request).requests.query(task_id=request.query_params.get("task_id"), after=_after(request))
    return JSONResponse({"requests": records})


async def get_faults(request: Request) -> JSONResponse:
    return JSONResponse({"rates": sandbox_of(request).fault_rates, "faults": FAULTS})


async def put_faults(request: Request) -> JSONResponse:
    """``PUT /_sandbox/faults`` with ``{"rates": {"duplicate": 0.3, …}}``: replaces the run's fault rates."""
    body = await json_object(request, '{"rates": {"<fault>": <probability>, …}}')
    rates = body.get("rates")
    if not isinstance(rates, dict):
        raise InvalidRequest('field rates must be an object such as {"duplicate": 0.3}')
    try:
        parsed = parse_rates(",".join(f"{name}={rate}" for name, rate in rates.items()))
    except FaultError as exc:
        raise InvalidRequest(str(exc)) from None
    sandbox = sandbox_of(request)
    sandbox.fault_rates = parsed
    return JSONResponse({"rates": parsed, "faults": FAULTS})


async def outage(request: Request) -> JSONResponse:
    """``POST /_sandbox/outage`` with ``{"seconds": N}``: every delivery attempt in the next N seconds fails
    as if the receiver were down, and is retried on the usual backoff."""
    body = await json_object(request, '{"seconds": <number>}')
    seconds = body.get("seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds <= 3600:
        raise InvalidRequest("field seconds must be a number from 0 to 3600")
    courier = sandbox_of(request).courier
    courier.outage_until = time.monotonic() + seconds
    return JSONResponse({"outage_seconds_left": seconds})
