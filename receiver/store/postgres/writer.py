"""Group commit on PostgreSQL: the jobs waiting at a moment share one transaction, each answered after its
commit, as the SQLite writer shares an fsync.

One group is in flight at a time, on a pooled connection (kept while groups follow each other): what arrives
meanwhile is the next group. (Several groups in flight made smaller groups, each with its own round trip and
commit, and fewer deliveries per second: rounds of scripts/bench_ingest.py at c=32, same run, ~3,500/s with up
to 8 against ~4,400/s with one.) Jobs of one ``Batched`` kind that follow each other in a group (deliveries,
under load) share one statement: the client's work per job is a few values in that statement's parameters, not a
statement of its own. A job that raises fails alone: the group is rolled back and the others run again in a new
transaction, one statement each where a shared statement failed (so a job may run more than once before its
commit: jobs act on the connection only). A failure of the database itself (down, read-only, timed out) fails
the whole group with ``StorageUnavailable``; a lost lock race (deadlock, serialization) runs the group again.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg_pool
import structlog

from receiver.errors import StorageUnavailable
from receiver.store.postgres.connection import RETRYABLE, is_unavailable, unavailable

T = TypeVar("T")
Conn = psycopg.AsyncConnection[Any]
Job = Callable[[Conn], Awaitable[Any]]
logger = structlog.get_logger()
_RACE_RETRIES = 5
_HOLD_GROUPS = 64


class Batched(abc.ABC):
    """A job that can share one statement with the jobs of its own kind next to it in a group."""

    @classmethod
    @abc.abstractmethod
    async def run_batch(cls, conn: Conn, jobs: Sequence[Any]) -> list[Any]:
        """Run ``jobs`` (all of this class) in one statement: a result per job, in order. A job that is refused
        has an exception as its result and must have changed nothing; raising fails the whole batch."""

    async def __call__(self, conn: Conn) -> Any:
        (result,) = await type(self).run_batch(conn, [self])
        if isinstance(result, BaseException):
            raise result
        return result


class _JobFailed(Exception):
    """One job raised: roll the group back and run the rest again."""


class _BatchFailed(Exception):
    """A shared statement raised: roll the group back and run its jobs one statement each, to find which."""


async def _attributed(index: int, failed: dict[int, BaseException], step: Awaitable[Any]) -> Any:
    """``step`` of job ``index``; its own failure is recorded as that job's (the group is then run again
    without it), while a failure of the database itself fails the group."""
    try:
        return await step
    except Exception as exc:
        if is_unavailable(exc) or isinstance(exc, RETRYABLE):
            raise
        failed[index] = exc
        raise _JobFailed from exc


class GroupWriter:
    def __init__(self, pool: psycopg_pool.AsyncConnectionPool, url: str, *, max_batch: int = 256) -> None:
        self._pool = pool
        self._url = url
        self._max_batch = max_batch
        self._waiting: list[tuple[Job, asyncio.Future[Any]]] = []
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self.commits = 0
        self.jobs = 0

    async def run(self, job: Callable[[Conn], Awaitable[T]]) -> T:
        """Await ``job``'s commit. Jobs submitted while a group is in flight are committed together."""
        if self._closed:
            raise StorageUnavailable("the ledger writer is not running (the server is starting or stopping)")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((job, future))
        if not self._draining:
            self._draining = True
            self._idle.clear()
            asyncio.get_running_loop().create_task(self._drain())
        # Not shielded: a caller that goes away cancels its future, and its job is committed all the same.
        return await future

    async def _drain(self) -> None:
        try:
            await asyncio.sleep(0)  # let the jobs of this turn of the loop join the group
            while self._waiting:
                await self._burst()
        finally:
            self._draining = False
            self._idle.set()

    def _take(self) -> list[tuple[Job, asyncio.Future[Any]]]:
        batch = self._waiting[: self._max_batch]
        del self._waiting[: self._max_batch]
        return batch

    async def _burst(self) -> None:
        """Commit groups one after the other on one pooled connection while jobs keep coming, without taking
        it from the pool and giving it back for each group (the writer's work on the event loop is what a
        delivery waits for under load). It goes back after a failure (the pool replaces a broken one) and after
        ``_HOLD_GROUPS`` groups (so that the pool's checks and its connections' maximum lifetime still apply
        under endless load)."""
        batch = self._take()
        try:
            async with self._pool.connection() as conn:
                for held in itertools.count(1):
                    if not await self._commit(conn, batch) or not self._waiting or held >= _HOLD_GROUPS:
                        return
                    batch = self._take()
        except Exception as exc:  # no connection (the server is down, the pool timed out): nothing committed
            self._fail(batch, exc)  # (a batch already answered is left as it is)

    async def _commit(self, conn: Conn, batch: list[tuple[Job, asyncio.Future[Any]]]) -> bool:
        """Commit ``batch`` and answer its jobs; False if the connection failed (the batch is failed)."""
        failed: dict[int, BaseException] = {}
        for attempt in range(_RACE_RETRIES):
            try:
                results = await self._attempt(conn, batch, failed)
            except RETRYABLE as exc:  # rolled back: run the group again on the same connection
                if attempt + 1 < _RACE_RETRIES:
                    logger.info("storage_write_retried", error_type=type(exc).__name__, jobs=len(batch))
                    continue
                self._fail(batch, exc)
                return True
            except Exception as exc:  # the database failed: nothing of the group is committed
                self._fail(batch, exc)
                return False
            self.commits += 1
            self.jobs += len(batch)
            for index, (_job, future) in enumerate(batch):
                if future.done():
                    continue  # its caller went away: the job is committed all the same
                outcome = failed.get(index, results.get(index))
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
            return True
        raise AssertionError("unreachable: the last attempt returns")

    async def _attempt(
        self, conn: Conn, batch: list[tuple[Job, asyncio.Future[Any]]], failed: dict[int, BaseException]
    ) -> Any:
        shared = True
        while True:
            try:
                return await self._group(conn, batch, failed, shared=shared)
            except _JobFailed:
                continue
            except _BatchFailed:
                shared = False

    @staticmethod
    async def _group(
        conn: Conn, batch: list[tuple[Job, asyncio.Future[Any]]], failed: dict[int, BaseException], *, shared: bool
    ) -> dict[int, Any]:
        """One transaction: the jobs in order, each run of neighbouring ``Batched`` jobs of one kind in one
        statement (when ``shared``), the others one by one. A result may be an exception: that job's refusal.

        A group that is one shared statement needs no ``BEGIN``/``COMMIT`` of its own: on the pool's autocommit
        connections a statement is its own transaction, and its answer arrives once the commit is done (the
        client waits for the server's ready-for-query, sent after the commit; a failed commit is an error)."""
        results: dict[int, Any] = {}
        jobs = [(index, job) for index, (job, _future) in enumerate(batch) if index not in failed]

        def kind(item: tuple[int, Job]) -> type | None:
            return type(item[1]) if shared and isinstance(item[1], Batched) else None

        runs = [(batched, list(run)) for batched, run in itertools.groupby(jobs, key=kind)]
        one_statement = len(runs) == 1 and runs[0][0] is not None
        async with contextlib.AsyncExitStack() as stack:
            if not one_statement:
                await stack.enter_async_context(conn.transaction())
            for batched, members in runs:
                if batched is not None:
                    try:
                        answers = await batched.run_batch(conn, [job for _index, job in members])  # type: ignore[attr-defined]
                    except Exception as exc:
                        if is_unavailable(exc) or isinstance(exc, RETRYABLE):
                            raise
                        raise _BatchFailed from exc
                    results.update(zip((index for index, _job in members), answers, strict=True))
                    continue
                for index, job in members:
                    results[index] = await _attributed(index, failed, job(conn))
        return results

    def _fail(self, batch: list[tuple[Job, asyncio.Future[Any]]], exc: BaseException) -> None:
        message = str(exc).strip()[:500]
        logger.error("storage_write_failed", error=message, error_type=type(exc).__name__, jobs=len(batch))
        failure = exc if isinstance(exc, StorageUnavailable) else unavailable(exc, self._url)
        for _job, future in batch:
            if not future.done():
                future.set_exception(failure)

    async def close(self) -> None:
        """Refuse new jobs and wait for the groups in flight."""
        self._closed = True
        await self._idle.wait()
