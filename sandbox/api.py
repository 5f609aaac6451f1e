"""The provider's v3 API as the sandbox serves it: submit, result, list, webhook secret."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import json
import re
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse

from sandbox import inputs
from sandbox.envelope import BadApiKey, InvalidRequest, ok
from sandbox.faults import HEADER, FaultError, FaultPlan, parse_plan
from sandbox.runtime import Sandbox
from sandbox.tasks import Task

MAX_PAGE_SIZE = 100
# A prompt may carry faults as well, for clients that cannot add a header (the official SDK, a browser):
# "a fox in the snow [sandbox:fail]".
PROMPT_FAULTS = re.compile(r"\[sandbox:([^\]]*)\]")


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def authorize(request: Request) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BadApiKey("BadApiKey: send your API key as the header Authorization: Bearer <key>")
    expected = sandbox_of(request).config.api_key
    if expected is not None and not hmac.compare_digest(token.strip().encode(), expected.reveal().encode()):
        raise BadApiKey("BadApiKey: the API key in the Authorization header is not valid")


async def json_object(request: Request, what: str, *, empty_ok: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip() and empty_ok:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidRequest(f"request body must be JSON: {what}") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"request body must be a JSON object: {what}")
    return data


def _webhook(request: Request) -> str | None:
    url = request.query_params.get("webhook")
    if url is None:
        return None
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in {"http", "https"} or not parsed.host:
        raise InvalidRequest(f"query parameter webhook={url!r} is not an absolute http(s) URL")
    return url


def _requested_faults(request: Request, payload: dict[str, Any]) -> FaultPlan | None:
    specs = [request.headers.get(HEADER, "")]
    prompt = payload.get("prompt")
    if isinstance(prompt, str):
        specs += PROMPT_FAULTS.findall(prompt)
    spec = ",".join(s for s in specs if s.strip())
    if not spec:
        return None
    try:
        return parse_plan(spec, default_delay=sandbox_of(request).config.delay_seconds)
    except FaultError as exc:
        raise InvalidRequest(str(exc)) from None


async def submit(request: Request) -> JSONResponse:
    """``POST /api/v3/{model_id}[?webhook=URL]``: accept a task, or refuse its inputs as the model would."""
    authorize(request)
    sandbox = sandbox_of(request)
    model = request.path_params["model_id"].strip("/")
    payload = await json_object(request, f"the inputs of model {model}")
    sync = payload.pop("enable_sync_mode", False) is True
    webhook = _webhook(request)
    requested = _requested_faults(request, payload)
    if sandbox.config.validate_inputs:
        inputs.check(model, payload)
    task = sandbox.submit(model, payload, webhook=webhook, plan=sandbox.plan_for(requested), base_url=base_url(request))
    if sync:
        await task.done.wait()
    return ok(task.prediction())


async def result(request: Request) -> JSONResponse:
    """``GET /api/v3/predictions/{id}/result``: the task as it stands now."""
    authorize(request)
    return ok(sandbox_of(request).tasks.get(request.path_params["task_id"]).prediction())


async def webhook_secret(request: Request) -> JSONResponse:
    authorize(request)
    return ok({"secret": sandbox_of(request).config.secret.reveal()})


@dataclasses.dataclass(frozen=True, slots=True)
class _ListQuery:
    page: int
    page_size: int
    model: str | None
    status: str | None
    created_after: float | None
    created_before: float | None

    def matches(self, task: Task) -> bool:
        return (
            (self.model is None or task.model == self.model)
            and (self.status is None or task.status == self.status)
            and (self.created_after is None or task.created_at >= self.created_after)
            and (self.created_before is None or task.created_at < self.created_before)
        )


def _int_field(body: dict[str, Any], name: str, default: int, low: int, high: int | None) -> int:
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        limit = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise InvalidRequest(f"field {name}={value!r} must be an integer {limit}")
    return value


def _text_field(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"field {name} must be a string")
    return value or None


def _time_field(body: dict[str, Any], name: str) -> float | None:
    text = _text_field(body, name)
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"field {name}={text!r} is not an ISO 8601 date-time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


async def list_predictions(request: Request) -> JSONResponse:
    """``POST /api/v3/predictions``: newest first, filtered, one page."""
    authorize(request)
    body = await json_object(request, "page, page_size and filters", empty_ok=True)
    query = _ListQuery(
        page=_int_field(body, "page", 1, 1, None),
        page_size=_int_field(body, "page_size", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE),
        model=_text_field(body, "model"),
        status=_text_field(body, "status"),
        created_after=_time_field(body, "created_after"),
        created_before=_time_field(body, "created_before"),
    )
    found = [task for task in sandbox_of(request).tasks.newest_first() if query.matches(task)]
    start = (query.page - 1) * query.page_size
    items = [task.prediction() for task in found[start : start + query.page_size]]
    return ok({"page": query.page, "total": len(found), "items": items})
