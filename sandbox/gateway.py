"""The API's front door: every ``/api/…`` request gets its API faults (``sandbox.apifaults``) applied and is
recorded in the request log (``GET /_sandbox/requests``, JSON lines in ``--request-log``).

The gateway is the one place that applies API faults, whichever way they were asked for: it chooses a
request's plan at the door (its header, else the run's rates) and keeps it in the scope; a route that finds
more inside the request (a submit's prompt markers) adds them with ``add_faults``, and the gateway answers
them, and logs them, exactly as if it had found them at the door.

A record has ``seq``, ``at`` (Unix seconds), ``method``, ``path`` (no query string: a webhook URL carries its
job's token), ``fingerprint`` (a digest of method, path and query: a submission's retries share it, as its
webhook URL is its own), ``client`` (``X-Client-Name``), ``faults``, ``outcome`` (answered | rate_limited |
server_error | held | hung_up | dropped), ``http_status`` (None when no answer was sent), ``retry_after``,
``task_id`` (a submit that created a task) and ``duration_ms``. Request headers are never recorded, so
neither is the API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.apifaults import ApiPlan
from sandbox.envelope import InvalidRequest, ServerFault, TooManyRequests, error_response
from sandbox.faults import HEADER, FaultError

if TYPE_CHECKING:
    from sandbox.runtime import Sandbox

API_PREFIX = "/api/"
PLAN_KEY = "sandbox.api_plan"  # the request's ApiPlan in its scope: the submit route adds its prompt's faults
SERVER_SEND_KEY = "sandbox.server_send"  # the server's own send callable (see sandbox.app.SandboxApp)
DISCONNECT_WAIT = 5.0


class EarlyFault(Exception):
    """Not an error: raised by ``add_faults`` when a request now has a fault answered before it is handled, to
    stop its route so that the gateway answers the fault."""


def add_faults(scope: Scope, plan: ApiPlan) -> None:
    """Add the API faults a route found inside its request to those chosen at the door. A rate limit or server
    error stops the route at once (raises EarlyFault): nothing is handled, and the gateway answers the fault."""
    merged = scope.get(PLAN_KEY, ApiPlan()).merge(plan)
    scope[PLAN_KEY] = merged
    if merged.early:
        raise EarlyFault


class Gateway:
    """Pure ASGI middleware in front of the API routes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        sandbox: Sandbox = scope["app"].state.sandbox
        started = time.perf_counter()
        record: dict[str, Any] = {
            "at": sandbox.clock(),
            "method": scope["method"],
            "path": scope["path"],
            "fingerprint": _fingerprint(scope),
            "client": Headers(scope=scope).get("x-client-name"),
        }
        try:
            plan = sandbox.api_plan_for(Headers(scope=scope).get(HEADER, ""))
        except FaultError as exc:
            plan = ApiPlan()
            await error_response(InvalidRequest(str(exc)))(scope, receive, send)
            self._record(sandbox, record, plan, "answered", 400, started)
            return
        answer_parts: list[Message] = []

        async def capture(message: Message) -> None:
            answer_parts.append(message)

        if not plan.early:
            scope[PLAN_KEY] = plan
            with contextlib.suppress(EarlyFault):  # the route added one; it sent nothing
                await self.app(scope, receive, capture)
            plan = scope[PLAN_KEY]
        if plan.early:
            error = (
                TooManyRequests(plan.rate_limit)
                if plan.rate_limit is not None
                else ServerFault(plan.server_error or 500)
            )
            await error_response(error)(scope, receive, send)
            outcome = "rate_limited" if plan.rate_limit is not None else "server_error"
            record["retry_after"] = error.headers.get("Retry-After")
            self._record(sandbox, record, plan, outcome, error.status, started)
            return
        status: int | None = answer_parts[0]["status"] if answer_parts else None
        record["task_id"] = _task_id(scope, answer_parts)
        if plan.drop_answer:
            await _drop(scope, receive)
            self._record(sandbox, record, plan, "dropped", None, started)
            return
        outcome = "answered"
        if plan.answer_timeout is not None:
            if await _client_left_within(receive, plan.answer_timeout):
                self._record(sandbox, record, plan, "hung_up", None, started)
                return
            outcome = "held"
        for message in answer_parts:
            await send(message)
        self._record(sandbox, record, plan, outcome, status, started)

    @staticmethod
    def _record(
        sandbox: Sandbox, record: dict[str, Any], plan: ApiPlan, outcome: str, status: int | None, started: float
    ) -> None:
        sandbox.requests.record(
            **{"retry_after": None, "task_id": None, **record},
            faults=plan.names(),
            outcome=outcome,
            http_status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )


def _fingerprint(scope: Scope) -> str:
    raw = b"%s %s?%s" % (scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b""))
    return hashlib.sha256(raw).hexdigest()[:16]


def _task_id(scope: Scope, parts: list[Message]) -> str | None:
    """The id of the task a submit created, read from its answer."""
    if scope["method"] != "POST" or not parts or parts[0]["status"] != 200:
        return None
    try:
        data = json.loads(b"".join(p.get("body", b"") for p in parts[1:])).get("data")
    except (ValueError, AttributeError):
        return None
    task_id = data.get("id") if isinstance(data, dict) and "status" in data else None
    return task_id if isinstance(task_id, str) else None


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _client_left_within(receive: Receive, seconds: float) -> bool:
    """Hold for ``seconds``; True if the client hung up meanwhile (its answer is then never sent)."""
    try:
        await asyncio.wait_for(_wait_disconnect(receive), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def _drop(scope: Scope, receive: Receive) -> None:
    """Close the connection without a byte of answer, as a network failure after the provider handled it would.

    ASGI has no message for this; the server's connection is reached through its own send callable (uvicorn's
    request cycle holds the transport). Without one (an in-process test client) the request fails instead.
    """
    cycle = getattr(scope.get(SERVER_SEND_KEY), "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("drop_answer: the connection is closed without an answer")
    transport.close()
    # Wait until the server has seen the connection go, so it does not answer 500 for a silent app.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_wait_disconnect(receive), timeout=DISCONNECT_WAIT)
