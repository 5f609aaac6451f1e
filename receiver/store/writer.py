"""Group commit: one thread owns the write connection and commits whatever jobs are waiting, together.

Under ``synchronous=FULL`` the cost of a commit is its fsync. Committing the deliveries that arrived while
the previous fsync ran, in one transaction, shares that cost; each caller is answered only after the commit
that holds its job. A job that raises fails alone: the group's transaction is rolled back and the other jobs
run again in a new one (so a job may run more than once before its commit: jobs act on the connection only).
A storage error fails the whole group (nothing of it is on disk), so every caller answers 503 and the
provider retries.

The web process's jobs come from one event loop: those awaited in one turn of the loop are handed over as one
item and their callers are woken by one call back into the loop, not one per job. On one core, where the loop
and this thread take turns, that keeps groups large and wake-ups few.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import structlog

from receiver.errors import StorageUnavailable
from receiver.store.connection import connect

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]
logger = structlog.get_logger()
_STOP = object()


class Writer:
    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000, max_batch: int = 512) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._gathered: dict[asyncio.AbstractEventLoop, list[tuple[Job, asyncio.Future[Any]]]] = {}
        self.commits = 0
        self.jobs = 0

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wavehook-writer", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish every job queued so far, then stop; later ``submit`` calls are refused."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._queue.put(_STOP)  # after every accepted job, since no more can be queued
        thread.join(timeout)

    def submit(self, job: Callable[[sqlite3.Connection], T]) -> concurrent.futures.Future[T]:
        """Queue ``job``; the future resolves after the transaction that ran it has committed."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._thread is None:
                # 503, not 500: a delivery that races the shutdown is retried by the provider.
                raise StorageUnavailable("the ledger writer is not running (the server is starting or stopping)")
            self._queue.put((job, future))
        return future

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Await ``job``'s commit. Jobs submitted in one turn of the event loop reach the writer as one group,
        and the group's callers are woken together, by one call into the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        gathered = self._gathered.get(loop)
        if gathered is None:
            gathered = self._gathered[loop] = []
            loop.call_soon(self._hand_over, loop)
        gathered.append((job, future))
        return await future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        gathered = self._gathered.pop(loop)
        with self._lock:
            if self._thread is not None:
                self._queue.put(_Gathered(gathered))
                return
        refused = StorageUnavailable("the ledger writer is not running (the server is starting or stopping)")
        for _job, future in gathered:
            if not future.done():
                future.set_exception(refused)

    def run_sync(self, job: Callable[[sqlite3.Connection], T], timeout: float | None = None) -> T:
        return self.submit(job).result(timeout)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        stopping = False
        while not stopping:
            batch, stopping = self._next_batch()
            if batch:
                conn = self._write(conn, batch)
        if conn is not None:
            conn.close()

    def _next_batch(self) -> tuple[list[Any], bool]:
        """The jobs waiting now (blocking for the first one), and whether the stop marker came after them."""
        batch: list[Any] = []
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait() if batch else self._queue.get()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            if isinstance(item, _Gathered):
                batch.extend(item.jobs)
            else:
                batch.append(item)
        return batch, False

    def _write(self, conn: sqlite3.Connection | None, batch: list[Any]) -> sqlite3.Connection | None:
        """Commit one group; on failure fail all of it and return a connection fit for the next group."""
        try:
            if conn is None:
                conn = connect(self._path, busy_timeout_ms=self._busy_timeout_ms)
            self._commit(conn, batch)
        except Exception as exc:  # the thread must outlive any failure, or every later caller would hang
            logger.error("storage_write_failed", error=str(exc), error_type=type(exc).__name__, jobs=len(batch))
            failure = StorageUnavailable(f"the database refused the write: {exc}")
            _settle([(future, False, failure) for _job, future in batch])
            if conn is not None:
                # A broken connection (file replaced, disk error) is reopened on the next group.
                try:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                except sqlite3.Error:
                    conn.close()
                    conn = None
        return conn

    def _commit(self, conn: sqlite3.Connection, batch: list[tuple[Job, concurrent.futures.Future[Any]]]) -> None:
        # No savepoint per job (two statements each): a job that raises is rare enough to pay for a rerun.
        failed: dict[int, Exception] = {}
        results = self._attempt(conn, batch, failed)
        while results is None:
            results = self._attempt(conn, batch, failed)
        self.commits += 1
        self.jobs += len(batch)
        _settle(
            [
                (future, False, failed[index]) if index in failed else (future, True, results[index])
                for index, (_job, future) in enumerate(batch)
            ]
        )

    @staticmethod
    def _attempt(
        conn: sqlite3.Connection, batch: list[tuple[Job, Any]], failed: dict[int, Exception]
    ) -> dict[int, Any] | None:
        """Run the jobs not yet failed in one transaction and commit it; ``None`` if one raised (it is added
        to ``failed`` and the transaction rolled back). An ``sqlite3.Error`` propagates: the group fails."""
        results: dict[int, Any] = {}
        conn.execute("BEGIN IMMEDIATE")
        for index, (job, _future) in enumerate(batch):
            if index in failed:
                continue
            try:
                results[index] = job(conn)
            except sqlite3.Error:
                raise  # the database itself failed: the whole group fails
            except Exception as exc:
                conn.execute("ROLLBACK")
                failed[index] = exc
                return None
        conn.execute("COMMIT")
        return results


class _Gathered:
    """The jobs one turn of an event loop submitted: handed to the writer thread together."""

    __slots__ = ("jobs",)

    def __init__(self, jobs: list[tuple[Job, asyncio.Future[Any]]]) -> None:
        self.jobs = jobs


Outcome = tuple["concurrent.futures.Future[Any] | asyncio.Future[Any]", bool, Any]


def _settle(outcomes: list[Outcome]) -> None:
    """Resolve each caller's future; an event loop's futures are resolved in one call into that loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for future, ok, value in outcomes:
        if isinstance(future, asyncio.Future):
            by_loop.setdefault(future.get_loop(), []).append((future, ok, value))
        else:
            _resolve(future, ok, value)
    for loop, mine in by_loop.items():
        # A closed loop has nobody waiting any more; its jobs are committed all the same.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle_in_loop, mine)


def _settle_in_loop(outcomes: list[Outcome]) -> None:
    for future, ok, value in outcomes:
        if future.done():
            continue  # its caller went away (a client disconnected): the job is committed all the same
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _resolve(future: concurrent.futures.Future[Any], ok: bool, value: Any) -> None:
    # The caller may have gone away (client disconnected): its job is committed all the same.
    try:
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
    except concurrent.futures.InvalidStateError:
        pass
