"""The dispatcher: claims due handler runs with a lease, calls their handlers, records each outcome.

``run_once()`` is the burst entry point (do what is due, return counts); ``start()``/``stop()`` run the same
steps forever, waking at once when the process's own ingest commits runs, and polling for runs other
processes enqueued or scheduled. Every claim, renewal and finish is one ledger call; a finish is applied
only while this dispatcher still holds the run's lease, so a worker whose lease expired cannot overwrite
the result of the worker that took the run over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from receiver.handlers.context import Resolver

import asyncio
import contextlib
import dataclasses
import os
import random
import secrets
import socket
import time
import traceback
from collections.abc import AsyncIterator, Callable

import structlog

from receiver.dispatch.backoff import backoff_delay
from receiver.dispatch.outcome import Counts, Failure
from receiver.errors import StorageUnavailable
from receiver.handlers.errors import GiveUp, RetryLater
from receiver.handlers.registry import Handler, Handlers
from receiver.media_store import MediaStore, open_media_store
from receiver.settings import Settings
from receiver.store.ledger import Ledger
from receiver.store.records import LOST_LEASE, ClaimedRun, RunEnd

logger = structlog.get_logger()


def make_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Dispatcher:
    def __init__(
        self,
        ledger: Ledger,
        handlers: Handlers,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None,
        clock: Callable[[], float] = time.time,
        resolve: Resolver | None = None,  # None: the system's resolver
        wake: asyncio.Event | None = None,
        owner: str | None = None,
        jitter: Callable[[], float] = random.random,
        media: MediaStore | None = None,
    ) -> None:
        self.ledger = ledger
        self.handlers = handlers
        self.settings = settings
        self.config = settings.dispatch
        self.http = http
        self.clock = clock
        self.resolve = resolve
        self.wake = wake or ledger.runs_enqueued
        self.owner = owner or make_owner()
        self.jitter = jitter
        self.media = media or open_media_store(settings)
        self.counts = Counts()
        self._inflight: dict[asyncio.Task[str], ClaimedRun] = {}
        self._leased: dict[int, ClaimedRun] = {}  # runs being executed (by the loop or a burst): renew these
        self._due: list[float] = []  # retry times this dispatcher scheduled: wake for them without polling
        self._stopping = asyncio.Event()
        self._client_lock = asyncio.Lock()
        self._loop_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None

    # -- burst -------------------------------------------------------------------------------------------

    async def run_once(self) -> Counts:
        """Claim what is due now (up to the concurrency), run it all to its end, and say what happened."""
        counts = Counts()
        await self.client()
        async with self._heartbeating():
            runs = await self._claim(self.config.concurrency)
            counts.claimed = len(runs)
            for run in runs:
                if run.exhausted:
                    counts.dead += 1
            for outcome in await asyncio.gather(*(self._execute(run) for run in runs if not run.exhausted)):
                counts.add(outcome)
        return counts

    # -- forever -----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._heartbeat_task = asyncio.create_task(self._heartbeat(), name="wavehook-dispatch-heartbeat")
        self._loop_task = asyncio.create_task(self._loop(), name="wavehook-dispatcher")
        logger.info("dispatcher_started", owner=self.owner, handlers=list(self.handlers.names))

    async def stop(self) -> None:
        """Stop claiming, let running handlers finish within the grace period, release the rest."""
        self._stopping.set()
        if self._loop_task is not None:
            await self._loop_task
        running = set(self._inflight)
        unfinished: set[asyncio.Task[str]] = set()
        if running:
            _done, unfinished = await asyncio.wait(running, timeout=self.config.shutdown_grace_seconds)
        interrupted = [self._inflight[task] for task in unfinished]
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        released = 0
        if interrupted:
            now = self.clock()
            with contextlib.suppress(StorageUnavailable):
                released = await self.ledger.release_runs(interrupted, owner=self.owner, now=now)
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
        logger.info("dispatcher_stopped", owner=self.owner, released=released, **dataclasses.asdict(self.counts))

    async def client(self) -> httpx.AsyncClient:
        """The handlers' HTTP client. Without one given, it is made when a run first needs it, in a thread:
        importing httpx and loading the CA certificates take tens of milliseconds a start-up need not wait for."""
        async with self._client_lock:
            if self.http is None:
                self.http = await asyncio.to_thread(_new_client)
        return self.http

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            free = self.config.concurrency - len(self._inflight)
            if free > 0:
                self.wake.clear()
                runs = await self._claim(free)
                for run in runs:
                    if run.exhausted:
                        self.counts.dead += 1
                    else:
                        task = asyncio.create_task(self._execute(run), name=f"wavehook-run-{run.id}")
                        self._inflight[task] = run
                        task.add_done_callback(self._done)
                if runs and len(runs) == free:
                    continue  # there may be more due: claim again as soon as a slot is free
            await self._wait(wake=free > 0)

    def _done(self, task: asyncio.Task[str]) -> None:
        run = self._inflight.pop(task, None)
        if task.cancelled():
            return
        if (exc := task.exception()) is not None:
            # Only the bookkeeping can get here (handler errors are outcomes): the lease expires, the run retries.
            logger.error("dispatch_failed", run_id=run.id if run else None, error=f"{type(exc).__name__}: {exc}")
            return
        self.counts.add(task.result())

    async def _wait(self, *, wake: bool) -> None:
        now = self.clock()
        self._due = [due for due in self._due if due > now]
        timeout = min([self.config.poll_seconds, *(due - now for due in self._due)])
        waiters = {asyncio.ensure_future(self._stopping.wait())}
        if wake:
            waiters.add(asyncio.ensure_future(self.wake.wait()))
        try:
            await asyncio.wait({*waiters, *self._inflight}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    # -- leases ------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _heartbeating(self) -> AsyncIterator[None]:
        if self._heartbeat_task is not None:
            yield
            return
        task = asyncio.create_task(self._heartbeat())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _heartbeat(self) -> None:
        """Renew the leases of running handlers, so only a dead worker's runs ever expire."""
        while True:
            await asyncio.sleep(self.config.lease_seconds / 3)
            ids = list(self._leased)
            if ids:
                try:
                    until = self.clock() + self.config.lease_seconds
                    await self.ledger.renew_leases(owner=self.owner, run_ids=ids, lease_until=until)
                except StorageUnavailable as exc:
                    logger.warning("lease_renewal_failed", error=exc.message, runs=len(ids))

    async def _claim(self, limit: int) -> list[ClaimedRun]:
        now = self.clock()
        names = self.handlers.names
        attempts = {handler.name: handler.max_attempts or self.config.max_attempts for handler in self.handlers}
        try:
            runs = await self.ledger.claim_runs(
                owner=self.owner,
                now=now,
                lease_seconds=self.config.lease_seconds,
                handlers=names,
                max_attempts=attempts,
                limit=limit,
                after=self.handlers.after,
            )
        except StorageUnavailable as exc:
            logger.warning("dispatch_claim_failed", error=exc.message)
            return []
        except Exception as exc:  # the loop must outlive any one failed claim; the next poll tries again
            logger.exception("dispatch_claim_failed", error=f"{type(exc).__name__}: {exc}")
            return []
        for run in runs:
            if run.exhausted:
                logger.error("handler_run", **_fields(run), outcome="dead", error=LOST_LEASE, duration_ms=None)
        return runs

    # -- one run -----------------------------------------------------------------------------------------

    async def _execute(self, run: ClaimedRun) -> str:
        # What calls a handler loads with the first run, not with the dispatcher: a start does not wait for it.
        from receiver.dispatch.execute import HandlerTimedOut, call
        from receiver.handlers.context import Context, StoredOutput, system_resolve
        from receiver.handlers.prediction import Prediction

        handler = self.handlers.get(run.handler)
        assert handler is not None  # claims are limited to this process's handlers
        max_attempts = handler.max_attempts or self.config.max_attempts
        timeout = handler.timeout or self.config.handler_timeout_seconds
        bound = _fields(run) | {"model": run.prediction.get("model")}
        ctx = Context(
            run_id=run.id,
            handler=run.handler,
            prediction_id=run.prediction_id,
            attempt=run.attempt,
            max_attempts=max_attempts,
            logger=logger.bind(**bound),
            settings=self.settings,
            http=await self.client(),
            resolve=self.resolve or system_resolve,
            clock=self.clock,
            media=self.media,
            downloads=tuple(StoredOutput.from_row(row) for row in run.downloads),
            _ledger=self.ledger,
        )
        started = time.perf_counter()
        failure: Failure | None = None
        self._leased[run.id] = run
        try:
            with structlog.contextvars.bound_contextvars(**bound):
                try:
                    # Inside the try: a row the handler cannot be given is the attempt's failure, recorded at once.
                    prediction = Prediction.from_row(run.prediction, status=run.status)
                    await call(handler, prediction, ctx, timeout)
                except RetryLater as exc:
                    failure = Failure(f"retry requested: {exc.reason}", "retry", delay=exc.delay)
                except GiveUp as exc:
                    failure = Failure(f"gave up: {exc}", final=True)
                except HandlerTimedOut as exc:
                    failure = Failure(str(exc), "timeout")
                except Exception as exc:
                    failure = Failure(f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            return await self._finish(run, handler, max_attempts, failure, duration_ms, bound)
        finally:
            self._leased.pop(run.id, None)

    async def _finish(
        self,
        run: ClaimedRun,
        handler: Handler,
        max_attempts: int,
        failure: Failure | None,
        duration_ms: float,
        bound: dict[str, object],
    ) -> str:
        now = self.clock()
        next_at: float | None = None
        error = failure.error if failure else None
        if failure is None:
            state = outcome = "succeeded"
        elif run.attempt >= max_attempts or failure.final:
            state = outcome = "dead"
        else:
            state, outcome = "pending", "retried"
            delay = failure.delay
            if delay is None:
                delay = backoff_delay(
                    run.attempt,
                    base=self.config.retry_base_seconds,
                    cap=self.config.retry_max_seconds,
                    random=self.jitter,
                )
            next_at = now + delay
        try:
            end = RunEnd(
                state=state,
                outcome=failure.kind if failure else "succeeded",
                next_at=next_at,
                error=error,
                traceback=failure.traceback if failure else None,
                duration_ms=duration_ms,
            )
            moved = await self.ledger.finish_run(run, end, owner=self.owner, now=now)
        except StorageUnavailable as exc:
            # The lease will expire and another attempt will run: at-least-once, never silently dropped.
            logger.error("handler_run", **bound, outcome="unrecorded", error=exc.message, duration_ms=duration_ms)
            return "unrecorded"
        if not moved:
            outcome = "lost"
        elif next_at is not None:
            self._due.append(next_at)
        level = {"succeeded": logger.info, "retried": logger.warning}.get(outcome, logger.error)
        level("handler_run", **bound, outcome=outcome, duration_ms=duration_ms, error=error, next_at=next_at)
        return outcome


def _fields(run: ClaimedRun) -> dict[str, object]:
    return {
        "run_id": run.id,
        "handler": run.handler,
        "prediction_id": run.prediction_id,
        "status": run.status,
        "attempt": run.attempt,
    }


def _new_client() -> httpx.AsyncClient:
    from receiver.dispatch.client import http_client

    return http_client()
