"""The periodic work ``wavehook worker`` does beside dispatch: the submitter's reconciliation pass.

It lives here, not in ``receiver``, because the receiver never imports the submitter; the worker command
takes it through ``receiver.dispatch_commands.make_worker``. Reconciled results are ingested through the
worker's own ingestor, so their handler runs are enqueued in the same transaction and dispatched at once.
"""

from __future__ import annotations

import httpx

from receiver.dispatch.worker import PeriodicTask, WorkerContext
from receiver.reader import Reader
from receiver.settings import Settings
from receiver.store.ingest import get_meta
from submitter.client import AsyncProviderClient
from submitter.ledger import Ledger
from submitter.outcomes import ReconcileCounts
from submitter.reconcile import reconcile_pass


class Reconciler:
    """Opens the provider client and the ledger handle on its first pass, closes them when the worker stops."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.transport = transport
        self._ledger: Ledger | None = None
        self._client: AsyncProviderClient | None = None

    async def __call__(self, ctx: WorkerContext) -> ReconcileCounts:
        if self._ledger is None or self._client is None:
            reader = Reader(self.settings.db_path, busy_timeout_ms=self.settings.busy_timeout_ms)
            secret = await reader.run(lambda conn: get_meta(conn, "correlation_secret"))
            self._ledger = Ledger(ingestor=ctx.ingestor, reader=reader, correlation_secret=secret or "")
            self._client = AsyncProviderClient.from_settings(self.settings, transport=self.transport)
        return await reconcile_pass(self._ledger, self._client, self.settings)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._ledger is not None:
            self._ledger.reader.close()


def periodic_tasks(settings: Settings) -> list[PeriodicTask]:
    """Reconciliation every WAVEHOOK_RECONCILE_INTERVAL_SECONDS, when WAVESPEED_API_KEY lets it ask the provider."""
    if settings.api_key is None:
        return []
    reconciler = Reconciler(settings)
    return [PeriodicTask("reconcile", settings.submit.reconcile_interval_seconds, reconciler, close=reconciler.close)]
