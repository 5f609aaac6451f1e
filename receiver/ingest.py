"""The one ingest path: webhooks and reconciled results alike go through ``Ingestor.ingest``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from receiver.delivery import Delivery, parse
from receiver.store.ledger import Ledger
from receiver.store.records import IngestResult, Quarantined

# (model, terminal status) -> names of the handlers that want a run
Router = Callable[[str | None, str], Sequence[str]]


def no_handlers(_model: str | None, _status: str) -> Sequence[str]:
    return ()


class Ingestor:
    """Turns deliveries into committed ledger rows, enqueuing the runs of the handlers ``route`` names."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        terminal_statuses: tuple[str, ...],
        route: Router = no_handlers,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.terminal_statuses = terminal_statuses
        self.route = route
        self.clock = clock

    async def ingest(self, delivery: Delivery) -> IngestResult:
        status = delivery.status
        # Only a final status enqueues runs: the router is asked for those alone.
        handlers = self.route(delivery.model, status) if status in self.terminal_statuses else ()
        return await self.ledger.ingest(delivery, now=self.clock(), handlers=handlers)

    async def ingest_result(
        self, prediction: dict[str, Any], *, reference: str | None, source: str = "reconcile"
    ) -> IngestResult:
        """Ingest a prediction fetched from the provider exactly as a webhook would be; its webhook-id names
        the status, so fetching the same outcome again is a duplicate."""
        body = json.dumps(prediction, sort_keys=True, separators=(",", ":")).encode()
        webhook_id = f"{source}:{prediction['id']}:{prediction.get('status')}"
        return await self.ingest(parse(body, webhook_id=webhook_id, reference=reference, source=source))

    async def quarantine(self, item: Quarantined) -> int:
        return await self.ledger.quarantine(item, now=self.clock())
