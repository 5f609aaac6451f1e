"""``GET /metrics``: in-process counters for the webhook path, gauges read from the ledger at scrape time.

The webhook endpoint only increments a counter and observes a histogram (no database work on the hot path).
Everything the ledger already knows (predictions by status, the outbox, dead runs, missed webhooks) is read
from it when scraped, so it is right whichever process answers and whichever process did the work. With
several worker processes, ``wavehook serve`` points prometheus-client's multiprocess mode at a directory so the
delivery counters are summed over every worker.

prometheus-client (``receiver.http.prometheus``) is loaded when the counters are first needed in its form: at
the first scrape, or once ``PENDING_LIMIT`` deliveries have been counted, which it is then told of; a cold start
answers its first deliveries without importing it. In multiprocess mode it is loaded at once, so that its files
see every delivery.
"""

from __future__ import annotations

import asyncio
import importlib
import shutil
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from receiver.http.state import receiver_state

if TYPE_CHECKING:
    from receiver.http.prometheus import DeliveryCounters
    from receiver.store.records import LedgerStats

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Deliveries counted before prometheus-client is loaded: past this many it is loaded (once, on the event loop).
PENDING_LIMIT = 256


class Metrics:
    """The counters one receiver process keeps; ``render`` adds the ledger's numbers at scrape time."""

    def __init__(self, *, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self._counters: DeliveryCounters | None = None
        self._pending: list[tuple[str, str, float | None]] = []
        if multiprocess_dir is not None:
            self.load()

    def delivery(self, outcome: str, *, reason: str = "none", seconds: float | None = None) -> None:
        if self._counters is not None:
            self._counters.delivery(outcome, reason, seconds)
            return
        self._pending.append((outcome, reason, seconds))
        if len(self._pending) >= PENDING_LIMIT:
            self.load()

    def load(self) -> DeliveryCounters:
        """The counters in prometheus-client's form, made (and told of the deliveries counted so far) if need be.

        Called on the event loop, as ``delivery`` is: the pending list is never read and written at once."""
        if self._counters is None:
            from receiver.http.prometheus import DeliveryCounters

            counters = DeliveryCounters()
            for outcome, reason, seconds in self._pending:
                counters.delivery(outcome, reason, seconds)
            self._pending.clear()
            self._counters = counters
        return self._counters

    def render(self, stats: LedgerStats) -> bytes:
        """The scrape's text (after ``load``: it may run in a thread, away from the event loop)."""
        assert self._counters is not None, "Metrics.load() first"
        return self._counters.render(stats, self.multiprocess_dir)


async def metrics(request: Request) -> Response:
    state = receiver_state(request.app)
    # The first scrape imports prometheus-client off the event loop; the counters are made on it.
    await asyncio.to_thread(importlib.import_module, "receiver.http.prometheus")
    from receiver.http.prometheus import CONTENT_TYPE

    state.metrics.load()
    stats = await state.ledger.stats(now=state.clock())
    # In multiprocess mode rendering reads every worker's counter files: off the event loop.
    body = await run_in_threadpool(state.metrics.render, stats)
    return Response(body, media_type=CONTENT_TYPE)


def prepare_multiprocess(workers: int, environ: MutableMapping[str, str]) -> Path | None:
    """Before starting several workers: give them a fresh shared directory for their counters.

    prometheus-client reads the variable when first imported, so it must be in the environment the worker
    processes inherit. An existing setting is respected (and left as it is).
    """
    if workers < 2 or environ.get(MULTIPROC_ENV):
        return None
    path = Path(tempfile.mkdtemp(prefix="wavehook-metrics-"))
    environ[MULTIPROC_ENV] = str(path)
    return path


def remove_multiprocess(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
