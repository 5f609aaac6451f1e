"""The periodic work ``wavehook worker`` does beside dispatch: the submitter's reconciliation pass.

It lives here, not in ``receiver``, because the receiver never imports the submitter; the worker command
(``wavehook/commands/dispatch.py``) hands it to ``run_worker``. Reconciled results are ingested through the
worker's own ingestor, so their handler runs are enqueued in the same transaction and dispatched at once.
"""

from __future__ import annotations

import httpx
import structlog

from receiver.dispatch.worker import PeriodicTask, WorkerContext
from receiver.settings import Settings
from submitter.client import AsyncProviderClient
from submitter.outcomes import ReconcileCounts
from submitter.reconcile import reconcile_pass

logger = structlog.get_logger()


class Reconciler:
    """Opens the provider client on its first pass and closes it when the worker stops; the ledger and its
    ingest path are the worker's own."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.transport = transport
        self._client: AsyncProviderClient | None = None

    async def __call__(self, ctx: WorkerContext) -> ReconcileCounts | str:
        async with ctx.ingestor.ledger.exclusive("reconcile") as mine:
            if not mine:
                # Every worker on a shared ledger schedules the pass; one at a time runs it.
                logger.info("reconcile_skipped", reason="another instance is running the pass")
                return "skipped: another instance is running the pass"
            if self._client is None:
                self._client = AsyncProviderClient.from_settings(self.settings, transport=self.transport)
            return await reconcile_pass(ctx.ingestor, self._client, self.settings)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def periodic_tasks(settings: Settings) -> list[PeriodicTask]:
    """Reconciliation every WAVEHOOK_RECONCILE_INTERVAL_SECONDS, when WAVESPEED_API_KEY lets it ask the provider."""
    if settings.api_key is None:
        return []
    reconciler = Reconciler(settings)
    return [PeriodicTask("reconcile", settings.submit.reconcile_interval_seconds, reconciler, close=reconciler.close)]
