"""Closing the loop when a webhook never comes: predictions still open after a while are fetched from the
provider and ingested through the receiver's own ingest path, so handlers run exactly as for a webhook.

``reconcile_once`` is the burst entry point (one pass, returns counts); the worker calls it periodically.
Doubtful submits are resolved in the same pass (see ``submitter.resolve``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from receiver.ingest import Ingestor
from receiver.settings import Settings
from submitter import resolve
from submitter.client import AsyncProviderClient
from submitter.errors import ProviderError, TaskNotFound
from submitter.outcomes import ReconcileCounts

logger = structlog.get_logger()

# The provider deletes tasks after 7 days: an older open prediction cannot be fetched any more.
PROVIDER_RETENTION_SECONDS = 7 * 24 * 3600.0


async def reconcile_once(
    ingestor: Ingestor,
    client: AsyncProviderClient,
    *,
    older_than: float,
    unknown_grace_seconds: float = 120.0,
    settle_seconds: float = 70.0,
    concurrency: int = 8,
    limit: int = 500,
    clock: Callable[[], float] = time.time,
) -> ReconcileCounts:
    """One pass: resolve doubtful submits sent over ``settle_seconds`` ago (their request has surely ended),
    then fetch predictions open for over ``older_than`` seconds and ingest what changed."""
    started = time.perf_counter()
    now = clock()
    counts = ReconcileCounts()
    doubtful = await ingestor.ledger.doubtful_submissions(sent_before=now - settle_seconds, limit=limit)
    for sub in doubtful:
        try:
            found = await resolve.resolve(
                ingestor, client, sub, now=now, grace_seconds=unknown_grace_seconds, window_seconds=settle_seconds
            )
        except ProviderError as exc:
            counts.errors += 1
            logger.warning("submission_lookup_failed", reference=sub["reference"], error=str(exc))
            continue
        field = {"submitted": "resolved", "failed": "not_created", "unknown": "still_unknown"}[found.outcome]
        setattr(counts, field, getattr(counts, field) + 1)
    # Those sent within the window (a batch interrupted just now) are unknown too: say so rather than 0.
    recent = await ingestor.ledger.doubtful_submissions(sent_before=now + 1, limit=limit)
    counts.too_recent = max(len(recent) - len(doubtful), 0)
    counts.still_unknown += counts.too_recent
    rows = await ingestor.ledger.open_predictions(
        seen_before=now - older_than, seen_after=now - PROVIDER_RETENTION_SECONDS, limit=limit
    )
    gate = asyncio.Semaphore(concurrency)

    async def one(row: dict[str, Any]) -> None:
        async with gate:
            await _check(ingestor, client, row, counts, now=now)

    await asyncio.gather(*(one(row) for row in rows))
    logger.info("reconcile_finished", **counts.as_dict(), duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return counts


async def reconcile_pass(
    ingestor: Ingestor,
    client: AsyncProviderClient,
    settings: Settings,
    *,
    older_than: float | None = None,
    clock: Callable[[], float] = time.time,
) -> ReconcileCounts:
    """``reconcile_once`` with its deadlines from the settings (``older_than`` may override one)."""
    submit = settings.submit
    return await reconcile_once(
        ingestor,
        client,
        older_than=submit.reconcile_after_seconds if older_than is None else older_than,
        unknown_grace_seconds=submit.unknown_grace_seconds,
        settle_seconds=submit.connect_timeout_seconds + submit.read_timeout_seconds,
        clock=clock,
    )


async def _check(
    ingestor: Ingestor, client: AsyncProviderClient, row: dict[str, Any], counts: ReconcileCounts, *, now: float
) -> None:
    counts.checked += 1
    try:
        prediction = await client.result(row["id"])
    except TaskNotFound:
        counts.gone += 1
        logger.warning("reconcile_task_gone", prediction_id=row["id"], model=row["model"])
        return
    except ProviderError as exc:
        counts.errors += 1
        logger.warning("reconcile_fetch_failed", prediction_id=row["id"], error=str(exc))
        return
    status = prediction.get("status")
    if status == row["status"]:
        counts.open += 1
        return
    result = await ingestor.ingest_result(prediction, reference=row["reference"])
    if not result.applied:
        counts.open += 1
    elif status in ingestor.terminal_statuses:
        counts.missed += 1
        since = row["submitted_at"] or row["first_seen_at"]
        logger.warning(
            "webhook_missed",
            prediction_id=row["id"],
            model=row["model"],
            status=status,
            waited_seconds=round(now - since, 1),
            runs_enqueued=result.runs_enqueued,
        )
    else:
        counts.progressed += 1
