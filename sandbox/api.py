"""The provider's v3 API as the sandbox serves it: submit (with sync mode), result, list, webhook secret,
balance."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hmac
import json
import re
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse

from sandbox import apifaults, inputs
from sandbox.envelope import BadApiKey, InvalidRequest, UnknownResource, ok
from sandbox.faults import HEADER, FaultError, FaultPlan, parse_plan
from sandbox.gateway import add_faults
from sandbox.runtime import Sandbox
from sandbox.tasks import Task

MAX_PAGE_SIZE = 100
# A prompt may carry faults as well, for clients that cannot add a header (the official SDK, a browser):
# "a fox in the snow [sandbox:fail]".
PROMPT_FAULTS = re.compile(r"\[sandbox:([^\]]*)\]")
# The API's own paths, never a model id whatever the method: these, and any path under these prefixes.
RESERVED = frozenset({"predictions", "balance", "models", "media", "webhook", "account"})
RESERVED_PREFIXES = ("media/", "predictions/", "webhook/", "account/")
# The sync-timeout answer: HTTP 200, the task in `data` with this code and an error the official SDKs match.
SYNC_TIMEOUT_CODE = 5004


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
    """The task faults of the header and the prompt (None: roll them); the prompt's API faults go to the gateway,
    which applies them as it does a header's (a 429 or 5xx stops the submit here, before anything is created)."""
    sandbox = sandbox_of(request)
    _api, task_parts, exempt = apifaults.split(request.headers.get(HEADER, ""))
    prompt = payload.get("prompt")
    prompt_specs = PROMPT_FAULTS.findall(prompt) if isinstance(prompt, str) else []
    prompt_api, prompt_task, _ = apifaults.split(",".join(prompt_specs))
    try:
        if prompt_api:
            add_faults(request.scope, sandbox.parse_api_plan(prompt_api, source="prompt marker [sandbox:…]"))
        spec = ",".join(task_parts + prompt_task)
        if not spec and not exempt:
            return None
        return parse_plan(spec, default_delay=sandbox.config.delay_seconds)
    except FaultError as exc:
        raise InvalidRequest(str(exc)) from None


def _sync_timeout_answer(task: Task, seconds: float) -> JSONResponse:
    """What the provider answers when a sync-mode task outlives the sync window: the task, still running."""
    data = task.prediction()
    data["code"] = SYNC_TIMEOUT_CODE
    data["error"] = (
        f"Sync mode timed out after {seconds:g} s; the task goes on. Query the result later at: {data['urls']['get']}"
    )
    return ok(data)


async def submit(request: Request) -> JSONResponse:
    """``POST /api/v3/{model_id}[?webhook=URL]``: accept a task, or refuse its inputs as the model would."""
    model = request.path_params["model_id"].strip("/")
    if request.method != "POST" or model in RESERVED or model.startswith(RESERVED_PREFIXES):
        raise UnknownResource(f"no route {request.method} {request.url.path}")
    authorize(request)
    sandbox = sandbox_of(request)
    payload = await json_object(request, f"the inputs of model {model}")
    sync = payload.pop("enable_sync_mode", False) is True
    webhook = _webhook(request)
    requested = _requested_faults(request, payload)
    if sandbox.config.validate_inputs:
        inputs.check(model, payload, strict=sandbox.config.strict_inputs)
    task = sandbox.submit(model, payload, webhook=webhook, plan=sandbox.plan_for(requested), base_url=base_url(request))
    if sync:
        try:
            await asyncio.wait_for(asyncio.shield(task.done.wait()), timeout=sandbox.config.sync_timeout)
        except TimeoutError:
            return _sync_timeout_answer(task, sandbox.config.sync_timeout)
    return ok(task.prediction())


async def balance(request: Request) -> JSONResponse:
    """``GET /api/v3/balance`` (``{"balance"}``) and ``GET /api/v3/account/balance`` (with ``currency``)."""
    authorize(request)
    amount = sandbox_of(request).config.balance
    return ok({"balance": amount, "currency": "USD"} if "account" in request.url.path else {"balance": amount})


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
            and (self.created_after is None or task.created >= self.created_after)
            and (self.created_before is None or task.created < self.created_before)
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
    items = [task.listed() for task in found[start : start + query.page_size]]
    return ok({"page": query.page, "total": len(found), "items": items})
