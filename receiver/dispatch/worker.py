"""``wavehook worker``: a process that only dispatches handler runs, plus any periodic tasks given to it.

Periodic tasks are how other packages add work to the worker without ``receiver`` importing them: the
command line (``wavehook/commands/dispatch.py``) passes, for example, the submitter's reconciliation pass, which ingests
what it finds through ``ctx.ingestor`` so its runs are enqueued, and dispatched, like a webhook's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

import asyncio
import contextlib
import dataclasses
import signal
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog

from receiver.dispatch.client import http_client
from receiver.dispatch.dispatcher import Dispatcher
from receiver.dispatch.outcome import Counts
from receiver.dispatch.service import dispatching
from receiver.handlers.registry import Handlers
from receiver.ingest import Ingestor
from receiver.settings import Settings
from receiver.store.ledger import Ledger, open_ledger

logger = structlog.get_logger()


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerContext:
    settings: Settings
    ledger: Ledger
    ingestor: Ingestor
    http: httpx.AsyncClient


@dataclasses.dataclass(frozen=True, slots=True)
class PeriodicTask:
    """``run`` is awaited at start and then every ``interval_seconds``; an exception is logged, not fatal."""

    name: str
    interval_seconds: float
    run: Callable[[WorkerContext], Awaitable[object]]
    close: Callable[[], Awaitable[object]] | None = None  # awaited once when the worker stops


async def _every(task: PeriodicTask, ctx: WorkerContext) -> None:
    while True:
        started = time.perf_counter()
        try:
            await task.run(ctx)
        except Exception as exc:
            logger.exception("periodic_task_failed", task=task.name, error=f"{type(exc).__name__}: {exc}")
        else:
            logger.info(
                "periodic_task_ran", task=task.name, duration_ms=round((time.perf_counter() - started) * 1000, 2)
            )
        await asyncio.sleep(task.interval_seconds)


@dataclasses.dataclass(slots=True)
class BurstReport:
    """What ``worker --burst`` did: each periodic task's result (or its failure) and the dispatch counts."""

    counts: Counts = dataclasses.field(default_factory=Counts)
    results: dict[str, object] = dataclasses.field(default_factory=dict)
    failures: dict[str, str] = dataclasses.field(default_factory=dict)  # task name -> error

    @property
    def failed(self) -> bool:
        """A real failure: a periodic task raised, or an outcome could not be recorded. A handler that failed
        is not one: its retry or dead letter is recorded, and the next burst or a replay takes it up."""
        return bool(self.failures) or self.counts.unrecorded > 0


async def burst(
    ledger: Ledger, handlers: Handlers, settings: Settings, *, periodic: Sequence[PeriodicTask] = ()
) -> BurstReport:
    """Run each periodic task once (reconciliation enqueues the runs it finds), then everything due now and
    whatever becomes due meanwhile; return what happened."""
    report = BurstReport()
    ingestor = Ingestor(ledger, terminal_statuses=settings.terminal_statuses, route=handlers.route)
    async with http_client() as http:
        ctx = WorkerContext(settings=settings, ledger=ledger, ingestor=ingestor, http=http)
        for task in periodic:
            try:
                report.results[task.name] = await task.run(ctx)
            except Exception as exc:
                logger.exception("periodic_task_failed", task=task.name, error=f"{type(exc).__name__}: {exc}")
                report.failures[task.name] = f"{type(exc).__name__}: {exc}"
            finally:
                if task.close is not None:
                    await task.close()
        dispatcher = Dispatcher(ledger, handlers, settings, http=http)
        while True:
            counts = await dispatcher.run_once()
            if not counts.claimed:
                return report
            for field in dataclasses.fields(Counts):
                total = getattr(report.counts, field.name) + getattr(counts, field.name)
                setattr(report.counts, field.name, total)


async def run_worker(
    settings: Settings,
    handlers: Handlers,
    *,
    periodic: Sequence[PeriodicTask] = (),
    stop: asyncio.Event | None = None,
    burst_mode: bool = False,
) -> BurstReport | None:
    """Dispatch until SIGTERM/SIGINT (or ``stop``), then shut down gracefully; with ``burst_mode``, run the
    periodic tasks once and what is due, and return the report."""
    async with await open_ledger(settings) as ledger:
        if burst_mode:
            return await burst(ledger, handlers, settings, periodic=periodic)
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        ingestor = Ingestor(ledger, terminal_statuses=settings.terminal_statuses, route=handlers.route)
        async with dispatching(ledger, handlers, settings) as dispatcher:
            ctx = WorkerContext(settings=settings, ledger=ledger, ingestor=ingestor, http=await dispatcher.client())
            tasks = [asyncio.create_task(_every(task, ctx), name=task.name) for task in periodic]
            logger.info("worker_started", periodic=[task.name for task in periodic])
            await stop.wait()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
            for periodic_task in periodic:
                if periodic_task.close is not None:
                    await periodic_task.close()
        return None
