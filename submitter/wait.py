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
) -> dict[str, Any]:
    """The ledger's row for ``prediction_id`` once it is final; ``WaitTimeout`` after ``deadline`` seconds.

    Reading the local ledger costs one indexed lookup per ``interval``; the provider is not polled at all
    while the webhook may still come.
    """
    start = monotonic()
    next_fetch = start + fallback_after
    while True:
        state = await ingestor.ledger.prediction_state(prediction_id)
        if state is not None and state["status_rank"] >= TERMINAL:
            row = await ingestor.ledger.get_prediction(prediction_id)
            assert row is not None
            return row
        now = monotonic()
        if now - start >= deadline:
            raise WaitTimeout(
                f"prediction {prediction_id} is not final after {deadline:g} s (status: {state and state['status']})"
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
