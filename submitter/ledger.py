"""The submitter's handle on the ledger: the group-commit writer, a reader, and the receiver's ingest path.

Another process (the web receiver, ``wavehook worker``) may use the same file at the same time; SQLite's
WAL and busy timeout arbitrate. A process that already has a writer and an ingestor passes them in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from receiver.delivery import parse
from receiver.ingest import Ingestor
from receiver.reader import Reader
from receiver.settings import Settings
from receiver.store import open_database
from receiver.store.ingest import IngestResult, Router, get_meta
from receiver.writer import Writer

T = TypeVar("T")


class Ledger:
    def __init__(self, *, ingestor: Ingestor, reader: Reader, correlation_secret: str, owned: bool = False) -> None:
        self.ingestor = ingestor
        self.writer: Writer = ingestor.writer
        self.reader = reader
        self.correlation_secret = correlation_secret
        self.terminal_statuses = ingestor.terminal_statuses
        self._owned = owned

    @classmethod
    def open(cls, settings: Settings, *, route: Router | None = None, clock: Callable[[], float] = time.time) -> Ledger:
        """Open (creating or upgrading) the ledger file; blocking, so async callers run it in a thread.

        ``route`` defaults to the handlers this process would load, so reconciled results enqueue the same
        handler runs a webhook would.
        """
        open_database(settings.db_path, busy_timeout_ms=settings.busy_timeout_ms)
        if route is None:
            from receiver.handlers.registry import load_handlers

            route = load_handlers(settings).route
        reader = Reader(settings.db_path, busy_timeout_ms=settings.busy_timeout_ms)
        secret = reader.run_sync(lambda conn: get_meta(conn, "correlation_secret"))
        if not secret:
            reader.close()
            raise RuntimeError(f"the ledger {settings.db_path} has no correlation secret")
        writer = Writer(settings.db_path, busy_timeout_ms=settings.busy_timeout_ms)
        writer.start()
        ingestor = Ingestor(writer, terminal_statuses=settings.terminal_statuses, route=route, clock=clock)
        return cls(ingestor=ingestor, reader=reader, correlation_secret=secret, owned=True)

    async def write(self, job: Callable[[Any], T]) -> T:
        return await self.writer.run(job)

    async def read(self, query: Callable[[Any], T]) -> T:
        return await self.reader.run(query)

    async def ingest_result(
        self, prediction: dict[str, Any], *, reference: str | None, source: str = "reconcile"
    ) -> IngestResult:
        """Ingest a prediction fetched from the provider exactly as a webhook would be, through the one
        ingest path; its webhook-id names the status, so fetching the same outcome again is a duplicate."""
        body = json.dumps(prediction, sort_keys=True, separators=(",", ":")).encode()
        webhook_id = f"{source}:{prediction['id']}:{prediction.get('status')}"
        delivery = parse(body, webhook_id=webhook_id, reference=reference, source=source)
        return await self.ingestor.ingest(delivery)

    def close(self) -> None:
        if self._owned:
            self.writer.stop()
            self.reader.close()
