"""Waiting for a prediction's final status on the ledger, where the webhook lands; the provider is asked only
once ``fallback_after`` has passed without one, and what it says is ingested like a webhook."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from receiver.ingest import Ingestor
from receiver.statuses import TERMINAL
from submitter.client import AsyncProviderClient
from submitter.errors import WaitTimeout
from submitter.refusals import RefusalWatch

logger = structlog.get_logger()


async def wait_final(
    ingestor: Ingestor,
    client: AsyncProviderClient,
    prediction_id: str,
    *,
    deadline: float,
    fallback_after: float,
    sleep: Callable[[float], Awaitable[None]],
    interval: float = 0.1,
    provider_interval: float = 5.0,
    monotonic: Callable[[], float] = time.monotonic,
    refusals: RefusalWatch | None = None,
    notify: Callable[[str], None] = lambda _text: None,
    refusal_interval: float = 1.0,
) -> dict[str, Any]:
    """The ledger's row for ``prediction_id`` once it is final; ``WaitTimeout`` after ``deadline`` seconds.

    Reading the local ledger costs one indexed lookup per ``interval``; the provider is not polled at all
    while the webhook may still come. Every ``refusal_interval``, ``refusals`` looks for deliveries of this job
    the receiver refused, and ``notify`` is told each one once (a wrong secret otherwise looks like a slow job).
    """
    start = monotonic()
    next_fetch = start + fallback_after
    next_refusals = start + refusal_interval
    while True:
        state = await ingestor.ledger.prediction_state(prediction_id)
        if state is not None and state["status_rank"] >= TERMINAL:
            row = await ingestor.ledger.get_prediction(prediction_id)
            assert row is not None
            return row
        now = monotonic()
        if refusals is not None and now >= next_refusals:
            next_refusals = now + refusal_interval
            for text in await refusals.check():
                notify(text)
        if now - start >= deadline:
            said = "; ".join(refusals.said.values()) if refusals is not None else ""
            raise WaitTimeout(
                f"prediction {prediction_id} is not final after {deadline:g} s (status: {state and state['status']})"
                + (f"; {said}" if said else "")
            )
        if now >= next_fetch:
            next_fetch = now + provider_interval
            await _ask_provider(ingestor, client, prediction_id, state or {})
        await sleep(interval)


async def _ask_provider(
    ingestor: Ingestor, client: AsyncProviderClient, prediction_id: str, state: dict[str, Any]
) -> None:
    prediction = await client.result(prediction_id)
    if prediction.get("status") == state.get("status"):
        return
    result = await ingestor.ingest_result(prediction, reference=state.get("reference"))
    logger.info(
        "wait_fallback",
        prediction_id=prediction_id,
        status=prediction.get("status"),
        applied=result.applied,
        runs_enqueued=result.runs_enqueued,
    )
