"""The one ingest path: webhooks and reconciled results alike go through ``Ingestor.ingest``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from receiver.delivery import Delivery
from receiver.store.ingest import IngestResult, Router, record_delivery, record_quarantine
from receiver.writer import Writer


def no_handlers(_model: str | None, _status: str) -> Sequence[str]:
    return ()


class Ingestor:
    """Turns deliveries into committed ledger rows through the group-commit writer."""

    def __init__(
        self,
        writer: Writer,
        *,
        terminal_statuses: tuple[str, ...],
        route: Router = no_handlers,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.writer = writer
        self.terminal_statuses = terminal_statuses
        self.route = route
        self.clock = clock
        # Set whenever new handler runs were committed, so an in-process dispatcher wakes at once.
        self.runs_waiting = asyncio.Event()

    def _job(self, delivery: Delivery) -> Callable[..., IngestResult]:
        now = self.clock()
        return lambda conn: record_delivery(
            conn, delivery, now=now, terminal_statuses=self.terminal_statuses, route=self.route
        )

    async def ingest(self, delivery: Delivery) -> IngestResult:
        result = await self.writer.run(self._job(delivery))
        if result.runs_enqueued:
            self.runs_waiting.set()
        return result

    def ingest_sync(self, delivery: Delivery) -> IngestResult:
        """For callers outside the event loop (the reconciler's CLI)."""
        return self.writer.run_sync(self._job(delivery))

    async def quarantine(
        self,
        *,
        webhook_id: str,
        body: bytes,
        body_sha256: str,
        reason: str,
        detail: str,
        prediction_id: str | None = None,
        webhook_timestamp: int | None = None,
    ) -> int:
        now = self.clock()
        return await self.writer.run(
            lambda conn: record_quarantine(
                conn,
                webhook_id=webhook_id,
                body=body,
                body_sha256=body_sha256,
                reason=reason,
                detail=detail,
                now=now,
                prediction_id=prediction_id,
                webhook_timestamp=webhook_timestamp,
            )
        )
