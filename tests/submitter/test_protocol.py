"""The protocol's decisions: when a request is repeated, when a submit is ambiguous, what an error says."""

from __future__ import annotations

import httpx
import pytest

from submitter import protocol
from submitter.errors import (
    AmbiguousSubmit,
    AuthenticationError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    TaskNotFound,
)

POLICY = protocol.Policy(retries=2, backoff_seconds=1.0, jitter=lambda: 1.0, clock=lambda: 1_800_000_000.0)
SUBMIT = protocol.submit_call("bytedance/waver-1.0", {"prompt": "x"}, "https://h.example/webhooks/wavespeed")
RESULT = protocol.result_call("abc")
REQUEST = httpx.Request("POST", "https://provider.test/api/v3/x")


def response(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers, request=REQUEST)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused", request=REQUEST),
        httpx.ConnectTimeout("slow", request=REQUEST),
        httpx.PoolTimeout("busy", request=REQUEST),
    ],
)
def test_submit_that_never_left_is_retried_then_unavailable(exc: httpx.HTTPError) -> None:
    """No connection means no task: the submit is repeated with backoff, then reported unavailable."""
    assert protocol.on_exception(SUBMIT, exc, 0, POLICY, "https://p").delay == 1.0
    assert protocol.on_exception(SUBMIT, exc, 1, POLICY, "https://p").delay == 2.0
    final = protocol.on_exception(SUBMIT, exc, 2, POLICY, "https://p")
    assert isinstance(final.error, ProviderUnavailable)
    assert "no answer from https://p" in final.error.message


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("timed out", request=REQUEST),
        httpx.RemoteProtocolError("Server disconnected without sending a response.", request=REQUEST),
        httpx.ReadError("reset", request=REQUEST),
        httpx.WriteError("broken pipe", request=REQUEST),
    ],
)
def test_submit_that_may_have_arrived_is_ambiguous_never_repeated(exc: httpx.HTTPError) -> None:
    """A submit whose answer was lost is ambiguous at once, whatever retries remain."""
    decision = protocol.on_exception(SUBMIT, exc, 0, POLICY, "https://p")
    assert decision.delay is None
    assert isinstance(decision.error, AmbiguousSubmit)
    assert "submit to bytedance/waver-1.0" in decision.error.message


def test_safe_calls_are_repeated_after_a_lost_answer() -> None:
    """Reads may be repeated after any transport failure."""
    exc = httpx.ReadTimeout("timed out", request=REQUEST)
    assert protocol.on_exception(RESULT, exc, 0, POLICY, "https://p").delay == 1.0


@pytest.mark.parametrize("status", [429, 503])
def test_submit_answered_429_or_503_is_retried(status: int) -> None:
    """429 and 503 say the provider took nothing: the submit is repeated, then the error is raised."""
    assert protocol.on_response(SUBMIT, response(status, {"code": status}), 0, POLICY).delay == 1.0
    final = protocol.on_response(SUBMIT, response(status, {"code": status, "message": "busy"}), 2, POLICY)
    assert isinstance(final.error, RateLimited if status == 429 else ProviderUnavailable)


def test_retry_after_seconds_and_date_are_honoured() -> None:
    """Retry-After in seconds or as an HTTP date sets the delay, capped at a minute."""
    assert protocol.on_response(SUBMIT, response(429, {}, {"retry-after": "7"}), 0, POLICY).delay == 7.0
    assert protocol.on_response(SUBMIT, response(429, {}, {"retry-after": "9999"}), 0, POLICY).delay == 60.0
    dated = response(429, {}, {"retry-after": "Fri, 15 Jan 2027 08:00:05 GMT"})
    assert protocol.retry_after(dated, protocol.Policy(clock=lambda: 1_800_000_000.0)) == 5.0
    assert protocol.retry_after(response(429, {}, {"retry-after": "soon"}), POLICY) is None


@pytest.mark.parametrize("status", [500, 502, 504])
def test_submit_answered_other_5xx_is_ambiguous(status: int) -> None:
    """Any other server error on a submit may come after the task was created: ambiguous, not retried."""
    decision = protocol.on_response(SUBMIT, response(status, {"code": status, "message": "boom"}), 0, POLICY)
    assert isinstance(decision.error, AmbiguousSubmit)
    assert decision.delay is None
    assert protocol.on_response(RESULT, response(status, {}), 0, POLICY).delay == 1.0


def test_error_envelopes_become_clear_exceptions() -> None:
    """The provider's message and status are in the exception; auth and missing tasks have their own types."""
    bad = protocol.on_response(SUBMIT, response(400, {"code": 400, "message": "prompt is required"}), 0, POLICY)
    assert isinstance(bad.error, ProviderError)
    assert bad.error.status == 400
    assert str(bad.error) == "submit to bytedance/waver-1.0: the provider answered HTTP 400: prompt is required"
    auth = protocol.on_response(SUBMIT, response(401, {"code": 401, "message": "Unauthorized"}), 0, POLICY)
    assert isinstance(auth.error, AuthenticationError)
    assert "WAVESPEED_API_KEY" in str(auth.error)
    gone = protocol.on_response(RESULT, response(404, {"code": 404, "message": "not found"}), 0, POLICY)
    assert isinstance(gone.error, TaskNotFound)
    text = protocol.on_response(SUBMIT, httpx.Response(418, text="teapot", request=REQUEST), 0, POLICY)
    assert str(text.error).endswith("HTTP 418: teapot")


def test_success_with_error_code_in_envelope_is_an_error() -> None:
    """HTTP 200 whose envelope code is not 200 is refused, as is a body without an envelope."""
    odd = protocol.on_response(RESULT, response(200, {"code": 500, "message": "nope", "data": None}), 0, POLICY)
    assert isinstance(odd.error, ProviderError)
    assert "code 500: nope" in str(odd.error)
    bare = protocol.on_response(RESULT, response(200, {"id": "x"}), 0, POLICY)
    assert "no data envelope" in str(bare.error)
    ok = protocol.on_response(RESULT, response(200, {"code": 200, "data": {"id": "x"}}), 0, POLICY)
    assert ok.value == {"id": "x"}


def test_list_items_accepts_the_usual_shapes() -> None:
    """A list answer may be a bare list or an object holding one; other things are an empty list."""
    assert protocol.list_items([{"id": "a"}, "junk"]) == [{"id": "a"}]
    assert protocol.list_items({"items": [{"id": "a"}], "total": 1}) == [{"id": "a"}]
    assert protocol.list_items({"predictions": [{"id": "b"}]}) == [{"id": "b"}]
    assert protocol.list_items(None) == []
