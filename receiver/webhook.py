"""``POST /webhooks/wavespeed``: read within the limit, verify, parse, commit, and only then answer."""

from __future__ import annotations

import time

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from receiver import correlation
from receiver.delivery import Delivery, body_hash, is_text, load_json, parse
from receiver.errors import BadRequest, HTTPError, PayloadTooLarge, SignatureError
from receiver.ingest import Ingestor
from receiver.signature import HEADER_ID, HEADER_TIMESTAMP, Verifier

logger = structlog.get_logger()


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused as soon as it is known to exceed ``limit`` (before reading, if declared)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        # isdigit() alone accepts digits int() refuses ("²"), and int() refuses numbers of 4,300+ digits.
        digits = declared.strip().lstrip("0") or "0"
        if not (digits.isascii() and digits.isdigit()):
            raise BadRequest("header Content-Length is not a whole number of bytes", reason="bad_content_length")
        if len(digits) > len(str(limit)) or int(digits) > limit:
            raise PayloadTooLarge(f"header Content-Length declares more than the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to answer: the error only gives the delivery its one log line.
        raise BadRequest(
            "the client disconnected before sending the whole body", reason="client_disconnected"
        ) from None
    return b"".join(chunks)


async def receive(request: Request) -> JSONResponse:
    state = request.app.state
    verifier: Verifier = state.verifier
    ingestor: Ingestor = state.ingestor
    started = time.perf_counter()
    log = {"webhook_id": request.headers.get(HEADER_ID)}
    try:
        body = await read_body(request, state.settings.max_body_bytes)
        try:
            verified = verifier.verify(request.headers, body)
        except SignatureError as exc:
            if exc.authentic:
                # Authentic means every header passed its checks: the id and timestamp are as verified.
                webhook_id = request.headers[HEADER_ID].strip()
                timestamp = int(request.headers[HEADER_TIMESTAMP])
                await _keep(ingestor, webhook_id, body, exc, timestamp=timestamp)
            raise
        reference = correlation.check(
            state.correlation_secret,
            request.query_params.get(correlation.REF_PARAM),
            request.query_params.get(correlation.TOKEN_PARAM),
        )
        try:
            delivery: Delivery = parse(
                body,
                webhook_id=verified.webhook_id,
                webhook_timestamp=verified.timestamp,
                reference=reference,
            )
        except BadRequest as exc:
            await _keep(ingestor, verified.webhook_id, body, exc, timestamp=verified.timestamp)
            raise
        log.update(prediction_id=delivery.prediction_id, model=delivery.model, status=delivery.status)
        result = await ingestor.ingest(delivery)
    except HTTPError as exc:
        state.metrics.delivery("rejected", reason=exc.reason)
        logger.info(
            "webhook_rejected",
            **log,
            outcome="failed" if exc.status >= 500 else "rejected",
            reason=exc.reason,
            http_status=exc.status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        raise
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
    return JSONResponse({"received": True, "duplicate": result.duplicate})


async def _keep(
    ingestor: Ingestor, webhook_id: str, body: bytes, exc: HTTPError, *, timestamp: int | None = None
) -> None:
    """Quarantine a signed delivery we refuse.

    If it cannot be stored, the StorageUnavailable (503) replaces the refusal: the provider then retries, and
    the authentic body is kept once storage works again instead of being lost behind a 400 or 401.
    """
    await ingestor.quarantine(
        webhook_id=webhook_id,
        body=body,
        body_sha256=body_hash(body),
        reason=exc.reason,
        detail=exc.message,
        prediction_id=_prediction_id(body),
        webhook_timestamp=timestamp,
    )


def _prediction_id(body: bytes) -> str | None:
    try:
        data = load_json(body)
    except BadRequest:
        return None
    found = data.get("id") if isinstance(data, dict) else None
    return found if isinstance(found, str) and is_text(found) else None
