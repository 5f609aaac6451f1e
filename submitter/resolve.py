"""Resolving a doubtful submit (its answer was lost): find the task, never send a second one.

In order: a webhook that carried the submission's reference has already told the ledger (the surest sign,
as the reference travels in the webhook URL); else the provider's list endpoint (newest first, last 7 days)
is searched for a task of that model, created around the time the request left, not already owned by another
submission, and whose inputs are those we sent. Listed tasks may not show their inputs (the docs do not say);
such a task is taken only when it is the one candidate in the window. Nothing found after a grace period: no
task was created, and the job may be sent again. Several candidates without inputs: still unknown, until the
webhook brings the reference.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

import structlog

from receiver.ingest import Ingestor
from receiver.store.records import FAILED
from receiver.timestamps import iso_utc
from submitter.client import AsyncProviderClient

logger = structlog.get_logger()

Outcome = Literal["submitted", "unknown", "failed"]
# Our clock and the provider's may disagree: search a little before the request left.
CLOCK_SKEW_SECONDS = 300.0
PAGE_SIZE = 100
MAX_PAGES = 20


@dataclasses.dataclass(frozen=True, slots=True)
class Resolution:
    outcome: Outcome
    prediction: dict[str, Any] | None = None
    resolved_by: str | None = None


def iso(timestamp: float) -> str:
    """The provider's time format: milliseconds, ``Z``."""
    return iso_utc(timestamp, timespec="milliseconds")


def _matches(sent: dict[str, Any], item: dict[str, Any]) -> bool | None:
    """True/False when the task shows its inputs (every input we sent, as sent: the provider may add
    defaults of its own); ``None`` when it does not show them."""
    found = item.get("input")
    if not isinstance(found, dict):
        return None
    return all(found.get(key) == value for key, value in sent.items())


async def _candidates(
    ingestor: Ingestor, client: AsyncProviderClient, sub: dict[str, Any], window_seconds: float
) -> tuple[list[dict[str, Any]], bool]:
    """Unowned tasks of the submission's model created while its request could have been handled, and
    whether the listing was read to its end (if not, an empty result proves nothing)."""
    sent_at = float(sub["sent_at"])
    filters = {
        "model": sub["model"],
        "created_after": iso(sent_at - CLOCK_SKEW_SECONDS),
        "created_before": iso(sent_at + window_seconds + CLOCK_SKEW_SECONDS),
    }
    found: list[dict[str, Any]] = []
    complete = False
    for page in range(1, MAX_PAGES + 1):
        items = await client.list_page(page, PAGE_SIZE, **filters)
        found += [
            item for item in items if item.get("model") in (None, sub["model"]) and isinstance(item.get("id"), str)
        ]
        if len(items) < PAGE_SIZE:
            complete = True
            break
    ids = [item["id"] for item in found]
    owned = await ingestor.ledger.owned_prediction_ids(ids)
    return [item for item in reversed(found) if item["id"] not in owned], complete


async def resolve(
    ingestor: Ingestor,
    client: AsyncProviderClient,
    sub: dict[str, Any],
    *,
    now: float,
    grace_seconds: float,
    window_seconds: float = 70.0,
) -> Resolution:
    """Tie ``sub`` to its task if it can be found; mark it failed if, after the grace period, there is none.

    ``window_seconds``: how long after sending the provider could still have created the task (the
    request's connect and read timeouts).
    """
    reference = sub["reference"]
    known = await ingestor.ledger.prediction_with_reference(reference)
    if known is not None:
        return await _tie(ingestor, sub, {"id": known}, "webhook", now) or Resolution("unknown")
    sent = json.loads(sub["input"])
    candidates, complete = await _candidates(ingestor, client, sub, window_seconds)
    # A webhook bringing our reference may have landed while the listing was read: it made our own task look
    # owned (so it is not among the candidates), and only this second look can tell it from no task at all.
    known = await ingestor.ledger.prediction_with_reference(reference)
    if known is not None:
        return await _tie(ingestor, sub, {"id": known}, "webhook", now) or Resolution("unknown")
    verdicts = [(item, _matches(sent, item)) for item in candidates]
    chosen = [item for item, verdict in verdicts if verdict] or [item for item, verdict in verdicts if verdict is None]
    if len(chosen) == 1 or any(verdict for _item, verdict in verdicts):
        resolution = await _tie(ingestor, sub, chosen[0], "lookup", now)
        if resolution is not None:
            return resolution
    if chosen or not complete:
        return Resolution("unknown")
    if now - float(sub["sent_at"]) < grace_seconds:
        return Resolution("unknown")
    error = "no task found by lookup: none was created, so the job may be sent again"
    await ingestor.ledger.record_submission_outcome(reference=reference, state=FAILED, error=error, now=now)
    logger.info("submission_resolved", reference=reference, outcome="not_created", model=sub["model"])
    return Resolution("failed")


async def _tie(
    ingestor: Ingestor, sub: dict[str, Any], prediction: dict[str, Any], resolved_by: str, now: float
) -> Resolution | None:
    """Tie the submission to ``prediction``; ``None`` if another submission already owns that task."""
    tied = await ingestor.ledger.record_submitted(
        reference=sub["reference"], prediction=prediction, resolved_by=resolved_by, now=now
    )
    if not tied:
        return None
    if prediction.get("status") in ingestor.terminal_statuses:
        await ingestor.ingest_result(prediction, reference=sub["reference"])
    logger.info(
        "submission_resolved",
        reference=sub["reference"],
        prediction_id=prediction["id"],
        model=sub["model"],
        outcome="found",
        resolved_by=resolved_by,
    )
    return Resolution("submitted", prediction, resolved_by)
