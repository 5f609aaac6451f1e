"""Webhook delivery: sign, POST, retry with exponential backoff, and inject the task's faults.

A retry repeats the delivery exactly (same webhook-id, body and timestamp, hence the same signature), as the
provider's timestamp is the time the event was generated, not the time of the attempt. Non-2xx answers,
timeouts and refused connections are retried until the retry window closes. This is the one place that
catches httpx's exceptions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
import structlog

from sandbox import signing
from sandbox.deliverylog import DeliveryLog
from sandbox.faults import FaultPlan

logger = structlog.get_logger()
STALE_BY_SECONDS = 360  # comfortably past the 300 s every receiver is told to enforce
_ERROR_TEXT = 200


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One webhook as generated: retries and duplicates resend exactly these bytes under these headers."""

    task_id: str
    status: str
    webhook_id: str
    timestamp: int
    body: bytes
    url: str


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial: float = 1.0
    maximum: float = 60.0
    window: float = 3600.0
    timeout: float = 10.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential from ``initial``, capped at ``maximum``, less up to a quarter of jitter."""
        pause: float = min(self.initial * 2.0 ** (attempt - 1), self.maximum)
        return pause * rng.uniform(0.75, 1.0)


class Courier:
    def __init__(
        self,
        *,
        secret: str,
        client: httpx.AsyncClient,
        log: DeliveryLog,
        policy: RetryPolicy,
        rng: random.Random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._client = client
        self._log = log
        self.policy = policy
        self._rng = rng
        self._clock = clock
        self.outage_until = 0.0  # monotonic time until which every attempt fails as "receiver down"

    async def deliver(self, final: Event, plan: FaultPlan, *, processing: Event | None = None) -> bool:
        """Deliver a task's final webhook with the faults of its plan; True when the receiver took it."""
        faults = plan.names()
        if plan.drop:
            self._record(final, kind="dropped", attempt=0, faults=faults, outcome="dropped")
            return False
        if plan.delay:
            await asyncio.sleep(plan.delay)
        down_until = time.monotonic() + plan.receiver_down
        if plan.bad_signature:
            forged = signing.headers("whsec_not-the-account-secret", final.webhook_id, final.timestamp, final.body)
            await self._attempt(final, forged, kind="bad_signature", attempt=1, faults=faults)
        if plan.stale_timestamp:
            stale = dataclasses.replace(final, timestamp=final.timestamp - STALE_BY_SECONDS)
            await self._attempt(stale, self._headers(stale), kind="stale_timestamp", attempt=1, faults=faults)
        if not await self._until_accepted(final, "genuine", faults, down_until):
            return False
        if plan.duplicate:
            await self._until_accepted(final, "duplicate", faults, down_until)
        if plan.stale_processing and processing is not None:
            await self._until_accepted(processing, "stale_processing", faults, down_until)
        return True

    async def _until_accepted(self, event: Event, kind: str, faults: list[str], down_until: float) -> bool:
        started = time.monotonic()
        headers = self._headers(event)
        attempt = 1
        while True:
            now = time.monotonic()
            if now < max(down_until, self.outage_until):
                self._record(event, kind=kind, attempt=attempt, faults=faults, outcome="down")
            elif await self._attempt(event, headers, kind=kind, attempt=attempt, faults=faults):
                return True
            pause = self.policy.backoff(attempt, self._rng)
            if time.monotonic() + pause - started > self.policy.window:
                self._record(event, kind=kind, attempt=attempt, faults=faults, outcome="gave_up")
                return False
            await asyncio.sleep(pause)
            attempt += 1

    async def _attempt(
        self, event: Event, headers: dict[str, str], *, kind: str, attempt: int, faults: list[str]
    ) -> bool:
        started = time.perf_counter()
        try:
            response = await self._client.post(event.url, content=event.body, headers=headers)
        except httpx.TimeoutException:
            error = f"no answer within {self.policy.timeout:g} s"
            self._record(event, kind=kind, attempt=attempt, faults=faults, outcome="error", error=error)
            return False
        except httpx.TransportError as exc:
            error = f"{type(exc).__name__}: {exc}"
            self._record(event, kind=kind, attempt=attempt, faults=faults, outcome="error", error=error)
            return False
        accepted = 200 <= response.status_code < 300
        self._record(
            event,
            kind=kind,
            attempt=attempt,
            faults=faults,
            outcome="accepted" if accepted else "refused",
            http_status=response.status_code,
            error=None if accepted else response.text[:_ERROR_TEXT],
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return accepted

    def _headers(self, event: Event) -> dict[str, str]:
        return signing.headers(self._secret, event.webhook_id, event.timestamp, event.body)

    def _record(self, event: Event, **fields: Any) -> None:
        entry = self._log.record(
            at=self._clock(),
            task_id=event.task_id,
            webhook_id=event.webhook_id,
            event_status=event.status,
            timestamp=event.timestamp,
            body_sha256=hashlib.sha256(event.body).hexdigest(),
            url=event.url,
            **{"http_status": None, "error": None, **fields},
        )
        logger.info("webhook_delivery", **{k: v for k, v in entry.items() if k not in {"url", "body_sha256"}})
