"""``POST /webhooks/wavespeed``: read within the limit, verify, parse, commit, and only then answer.

The endpoint is ``respond``, which reads the body from ASGI's ``receive`` and returns the answer whole: at
thousands of deliveries per second, Starlette's Request and Response objects and their wrappers cost as much
as verifying and parsing. ``wavehook serve``'s HTTP protocol calls it directly; ``WebhookEndpoint`` is the
same as an ASGI app. Answers are pre-encoded; every refusal is rendered as on every other route
(``responses.error_response``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import structlog
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from receiver import correlation
from receiver.delivery import Delivery, body_hash, is_text, load_json, parse
from receiver.errors import BadRequest, HTTPError, PayloadTooLarge, SignatureError, TokenMismatch
from receiver.http.responses import Answer
from receiver.http.state import ReceiverState, receiver_state, route_path
from receiver.ingest import Ingestor
from receiver.signature import HEADER_ID, HEADER_TIMESTAMP, MAX_ID_LENGTH
from receiver.store.records import IngestResult, Quarantined

logger = structlog.get_logger()


def headers_of(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request headers (ASGI's list) by lower-case name; of a repeated header, the first (as Starlette's
    ``Headers.get``)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(raw)}


async def read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The raw body, refused as soon as it is known to exceed ``limit`` (before reading, if ``declared``)."""
    if declared is not None:
        # isdigit() alone accepts digits int() refuses ("²"), and int() refuses numbers of 4,300+ digits.
        digits = declared.strip().lstrip("0") or "0"
        if not (digits.isascii() and digits.isdigit()):
            raise BadRequest("header Content-Length is not a whole number of bytes", reason="bad_content_length")
        if len(digits) > len(str(limit)) or int(digits) > limit:
            raise PayloadTooLarge(f"header Content-Length declares more than the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            # http.disconnect: nobody is left to answer; the error only gives the delivery its one log line.
            raise BadRequest("the client disconnected before sending the whole body", reason="client_disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# The two answers of a stored delivery, encoded as JSONResponse would encode them.
_STORED = {
    duplicate: Answer(200, [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")], body)
    for duplicate, body in (
        (False, b'{"received":true,"duplicate":false}'),
        (True, b'{"received":true,"duplicate":true}'),
    )
}


class WebhookEndpoint:
    """The route's ASGI app: a class, so that Starlette's ``Route`` does not wrap it as a request handler."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = await respond(scope["app"], scope["headers"], scope["query_string"], receive)
        await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
        await send({"type": "http.response.body", "body": answer.body})


async def respond(
    app: Any, raw_headers: Sequence[tuple[bytes, bytes]], query_string: bytes, receive: Receive
) -> Answer:
    """The delivery's answer, after one canonical log line and one metric, whatever its outcome.

    The endpoint without ASGI's response messages: ``wavehook serve``'s HTTP protocol calls it directly
    (``receiver.http.connections.answer_directly``), any other server through ``WebhookEndpoint``.
    ``receive`` gives the body as ASGI messages.
    """
    started = time.perf_counter()
    try:
        state = receiver_state(app)
    except HTTPError as exc:
        return Answer.of_error(exc)
    headers = headers_of(raw_headers)
    log: dict[str, Any] = {"webhook_id": _loggable_id(headers.get(HEADER_ID))}
    try:
        delivery = await _verified_delivery(state, query_string, receive, headers)
        log.update(prediction_id=delivery.prediction_id, model=delivery.model, status=delivery.status)
        result = await _ingest(state.ingestor, delivery)
    except HTTPError as exc:
        state.metrics.delivery("rejected", reason=exc.reason)
        if exc.status < 500:  # a 503 is our storage failing, not a refusal of the delivery
            state.refusals.record(exc.reason, log["webhook_id"])
        logger.info(
            "webhook_rejected",
            **log,
            outcome="failed" if exc.status >= 500 else "rejected",
            reason=exc.reason,
            http_status=exc.status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return Answer.of_error(exc)
    elapsed = time.perf_counter() - started
    outcome = "duplicate" if result.duplicate else "accepted"
    state.metrics.delivery(outcome, seconds=elapsed)
    logger.info(
        "webhook_received",
        **log,
        outcome=outcome,
        applied=result.applied,
        conflict=result.conflict,
        runs_enqueued=result.runs_enqueued,
        duration_ms=round(elapsed * 1000, 2),
    )
    return _STORED[result.duplicate]


def _loggable_id(raw: str | None) -> str | None:
    """The webhook-id as logged before it is checked: never more than the longest id the verifier accepts."""
    if raw is None or len(raw) <= MAX_ID_LENGTH:
        return raw
    return f"{raw[:MAX_ID_LENGTH]}…[{len(raw)} characters]"


class WebhookFastPath:
    """ASGI middleware placed first: deliveries go straight to the endpoint, everything else passes on.

    The access check (the route is public), the exception middleware and the router cost about 6 µs a request
    in front of an endpoint that handles its own errors; mounted under a prefix, the path within the receiver
    is compared. Another method on the path still reaches the route (and its 405).
    """

    def __init__(self, app: ASGIApp, *, path: str, endpoint: ASGIApp) -> None:
        self.app = app
        self.path = path
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and (scope["path"] == self.path or route_path(scope) == self.path)
            and scope["method"] == "POST"
        ):
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _verified_delivery(
    state: ReceiverState, query_string: bytes, receive: Receive, headers: dict[str, str]
) -> Delivery:
    """Read, verify and parse; a signed delivery refused on its timing or its body is quarantined first."""
    ingestor = state.ingestor
    body = await read_body(receive, headers.get("content-length"), state.settings.max_body_bytes)
    try:
        verified = state.verifier.verify(headers, body)
    except SignatureError as exc:
        if exc.authentic:
            # Authentic means every header passed its checks: the id and timestamp are as verified.
            webhook_id = headers[HEADER_ID].strip()
            timestamp = int(headers[HEADER_TIMESTAMP])
            await _keep(ingestor, webhook_id, body, exc, timestamp=timestamp)
        raise
    try:
        reference = _reference(state, query_string)
        return parse(body, webhook_id=verified.webhook_id, webhook_timestamp=verified.timestamp, reference=reference)
    except (BadRequest, TokenMismatch) as exc:
        # Signed by the provider: a wrong token (a job submitted against another ledger) is kept like a bad body.
        await _keep(ingestor, verified.webhook_id, body, exc, timestamp=verified.timestamp)
        raise


async def _ingest(ingestor: Ingestor, delivery: Delivery) -> IngestResult:
    """Commit a verified delivery; one the ledger refuses for its reference is quarantined instead."""
    try:
        return await ingestor.ingest(delivery)
    except TokenMismatch as exc:
        await _keep(ingestor, delivery.webhook_id, delivery.body, exc, timestamp=delivery.webhook_timestamp)
        raise


def _reference(state: Any, query_string: bytes) -> str | None:
    """The job reference of a delivery whose webhook URL carries one, checked against its token."""
    if not query_string:
        return None
    query = QueryParams(query_string)
    return correlation.check(
        state.correlation_keys.accepted, query.get(correlation.REF_PARAM), query.get(correlation.TOKEN_PARAM)
    )


async def _keep(
    ingestor: Ingestor, webhook_id: str, body: bytes, exc: HTTPError, *, timestamp: int | None = None
) -> None:
    """Quarantine a signed delivery we refuse.

    If it cannot be stored, the StorageUnavailable (503) replaces the refusal: the provider then retries, and
    the authentic body is kept once storage works again instead of being lost behind a 400 or 401.
    """
    await ingestor.quarantine(
        Quarantined(
            webhook_id=webhook_id,
            body=body,
            body_sha256=body_hash(body),
            reason=exc.reason,
            detail=exc.message,
            prediction_id=_prediction_id(body),
            webhook_timestamp=timestamp,
        )
    )


def _prediction_id(body: bytes) -> str | None:
    try:
        data = load_json(body)
    except BadRequest:
        return None
    found = data.get("id") if isinstance(data, dict) else None
    return found if isinstance(found, str) and is_text(found) else None
