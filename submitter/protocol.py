"""The provider's HTTP protocol without I/O: requests to build, envelopes to read, and what to do on failure.

Both clients (sync and async) run the same decisions, so the one rule that matters is written once: a
submit ``POST`` is repeated only when the provider cannot have received it (no connection was made, or it
answered 429 or 503); where it may have created the task, the outcome is *ambiguous* and is resolved by a
lookup, never by a second submit.
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from submitter.errors import (
    AmbiguousSubmit,
    AuthenticationError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    SubmitterError,
    TaskNotFound,
)

API = "/api/v3"
MAX_RETRY_AFTER = 60.0
# No connection was made, so the provider cannot have seen the request.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
NOTHING_CREATED = frozenset({429, 503})


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """One provider request. ``safe``: repeating it cannot create anything (reads, lookups, uploads)."""

    method: str
    path: str
    what: str  # for messages: "submit to bytedance/waver-1.0", "result of abc123"
    safe: bool
    json: Any = None
    params: dict[str, str] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    retries: int = 4
    backoff_seconds: float = 0.5
    jitter: Callable[[], float] = random.random
    clock: Callable[[], float] = time.time


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """Either ``value`` (done), ``error`` (raise it) or ``delay`` (sleep, then send again, for ``reason``)."""

    value: Any = None
    error: SubmitterError | None = None
    delay: float | None = None
    # Why a request is sent again, for the counts a run reports: rate_limited (429), unavailable (503),
    # server_error (another 5xx or a 408, on a request that cannot create anything), no_connection, no_answer.
    reason: str | None = None


def submit_call(model_id: str, inputs: dict[str, Any], webhook_url: str | None) -> Call:
    params = {"webhook": webhook_url} if webhook_url else None
    return Call("POST", f"{API}/{model_id}", f"submit to {model_id}", safe=False, json=inputs, params=params)


def result_call(prediction_id: str) -> Call:
    return Call("GET", f"{API}/predictions/{prediction_id}/result", f"result of {prediction_id}", safe=True)


def list_call(page: int, page_size: int, filters: dict[str, str]) -> Call:
    body = {"page": page, "page_size": page_size, **filters}
    return Call("POST", f"{API}/predictions", "list of predictions", safe=True, json=body)


def secret_call() -> Call:
    return Call("GET", f"{API}/webhook/secret", "webhook secret", safe=True)


def upload_ticket_call(filename: str, size: int, content_type: str) -> Call:
    body = {"filename": filename, "size": size, "content_type": content_type}
    return Call("POST", f"{API}/media/uploads", f"upload ticket for {filename}", safe=True, json=body)


def backoff(policy: Policy, attempt: int) -> float:
    """Exponential, with jitter so that a batch's clients do not come back in step."""
    return float(policy.backoff_seconds * (2**attempt) * (0.5 + policy.jitter() / 2))


def retry_after(response: httpx.Response, policy: Policy) -> float | None:
    raw = response.headers.get("retry-after", "").strip()
    if not raw:
        return None
    if raw.isdigit():
        return min(float(raw), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError):
        return None
    return min(max(when - policy.clock(), 0.0), MAX_RETRY_AFTER)


def on_exception(call: Call, exc: httpx.HTTPError, attempt: int, policy: Policy, base_url: str) -> Decision:
    """A request that got no response: repeat it only if it cannot have created anything."""
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, NOT_SENT) or call.safe:
        if attempt < policy.retries:
            reason = "no_connection" if isinstance(exc, NOT_SENT) else "no_answer"
            return Decision(delay=backoff(policy, attempt), reason=reason)
        return Decision(error=ProviderUnavailable(f"{call.what}: no answer from {base_url} ({detail})"))
    message = f"{call.what}: the request was sent but no answer came back ({detail})"
    return Decision(error=AmbiguousSubmit(message, cause="no_answer"))


def on_response(call: Call, response: httpx.Response, attempt: int, policy: Policy) -> Decision:
    status = response.status_code
    if 200 <= status < 300:
        try:
            return Decision(value=envelope_data(response, call.what))
        except ProviderError as exc:
            return Decision(error=exc)
    retryable = status in NOTHING_CREATED or (call.safe and (status >= 500 or status == 408))
    if retryable and attempt < policy.retries:
        reason = {429: "rate_limited", 503: "unavailable"}.get(status, "server_error")
        return Decision(delay=retry_after(response, policy) or backoff(policy, attempt), reason=reason)
    return Decision(error=error_for(call, response))


def _message(response: httpx.Response) -> tuple[str, int | None]:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase, None
    if isinstance(body, dict):
        code = body.get("code")
        message = body.get("message") or body.get("error") or body.get("detail")
        return str(message or body)[:500], code if isinstance(code, int) else None
    return str(body)[:200], None


def error_for(call: Call, response: httpx.Response) -> ProviderError:
    """The provider's error envelope as a clear exception; the message never repeats request headers."""
    status = response.status_code
    message, code = _message(response)
    text = f"{call.what}: the provider answered HTTP {status}: {message}"
    if status in {401, 403}:
        return AuthenticationError(f"{text} (check WAVESPEED_API_KEY)", status=status, code=code)
    if status == 404 and call.path.endswith("/result"):
        return TaskNotFound(f"{text} (unknown id, or older than the provider's 7 days)", status=status, code=code)
    if status == 429:
        return RateLimited(text, status=status, code=code)
    if status == 503:
        return ProviderUnavailable(text, status=status, code=code)
    if status >= 500 and not call.safe:
        # The provider failed while handling a submit: it may have created the task first.
        return AmbiguousSubmit(text, cause="server_error")
    if status >= 500:
        return ProviderUnavailable(text, status=status, code=code)
    return ProviderError(text, status=status, code=code)


def envelope_data(response: httpx.Response, what: str) -> Any:
    """``data`` of ``{"code": 200, "message": …, "data": …}``; an envelope with another code is an error."""
    try:
        body = response.json()
    except ValueError:
        raise ProviderError(f"{what}: the provider's answer is not JSON", status=response.status_code) from None
    if not isinstance(body, dict) or "data" not in body:
        raise ProviderError(f"{what}: the provider's answer has no data envelope", status=response.status_code)
    code = body.get("code", 200)
    if code != 200:
        raise ProviderError(
            f"{what}: the provider answered code {code}: {body.get('message')}",
            status=response.status_code,
            code=code if isinstance(code, int) else None,
        )
    return body["data"]


def list_items(data: Any) -> list[dict[str, Any]]:
    """The predictions of a list answer: the docs do not show its shape, so accept the usual ones."""
    if isinstance(data, dict):
        for key in ("items", "predictions", "list", "data", "results"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list):
        return []
    return [item for item in data if isinstance(item, dict)]
