"""The PostgreSQL ledger: the second implementation of the ``Ledger`` seam, for several instances on one
database (see ``receiver.store.ledger`` for the contract every backend keeps).

Writes go through the group-commit ``GroupWriter`` on a pool of connections; reads take a pooled
connection each. A failure of the server (down, read-only, timed out, restarted) is ``StorageUnavailable``
(503); the pool reconnects by itself when the server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from receiver.store.ledger import Ledger
from receiver.store.postgres import ingest, queries, runs, stats, submissions
from receiver.store.postgres.connection import Conn, fetch_all, is_unavailable, open_pool, unavailable
from receiver.store.postgres.listener import RunsListener
from receiver.store.postgres.schema import LOCK_CLASS, LOCKS, migrate_url
from receiver.store.postgres.url import masked
from receiver.store.postgres.writer import GroupWriter
from receiver.store.records import (
    ClaimedRun,
    Download,
    IngestResult,
    LedgerStats,
    Quarantined,
    ReplayResult,
    RunEnd,
    RunSelection,
)

if TYPE_CHECKING:
    from receiver.delivery import Delivery
    from receiver.settings import Settings

T = TypeVar("T")
logger = structlog.get_logger()


class PostgresLedger(Ledger):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.url = settings.db
        self.timeout_ms = settings.busy_timeout_ms
        self.terminal_statuses = settings.terminal_statuses
        pool_size = settings.db_pool_size
        self.pool = open_pool(self.url, max_size=pool_size, timeout_ms=self.timeout_ms)
        # Group slots leave connections for reads and claims; one group in flight when the pool is tiny.
        # Groups in flight at once, each on its own connection; the rest of the pool serves reads and claims.
        self.writer = GroupWriter(self.pool, self.url, parallel=max(1, min(8, pool_size - 2)))
        self.listener = RunsListener(self.url, self.runs_enqueued, timeout_ms=self.timeout_ms)

    def __repr__(self) -> str:
        return f"PostgresLedger({masked(self.url)!r})"

    async def open(self) -> None:
        # The migration waits on an advisory lock other instances may hold: off the event loop.
        await asyncio.to_thread(migrate_url, self.url, timeout_ms=self.timeout_ms)
        await self.pool.open()
        self.listener.start()

    async def close(self) -> None:
        await self.writer.close()
        await self.listener.stop()
        await self.pool.close()

    async def _write(self, job: Callable[[Conn], Awaitable[T]]) -> T:
        return await self.writer.run(job)

    async def _read(self, query: Callable[[Conn], Awaitable[T]]) -> T:
        try:
            async with self.pool.connection() as conn:
                return await query(conn)
        except Exception as exc:
            if is_unavailable(exc):
                raise unavailable(exc, self.url) from None
            raise

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        """Hold the advisory lock ``name`` (one of ``LOCKS``) while the block runs; False when another
        instance holds it (the block then skips its work). A dead process's lock goes with its connection."""
        key = LOCKS[name]
        async with self.pool.connection() as conn:
            (row,) = await fetch_all(conn, "SELECT pg_try_advisory_lock(%s, %s) AS got", (LOCK_CLASS, key))
            got = bool(row["got"])
            try:
                yield got
            finally:
                if got:
                    with contextlib.suppress(Exception):
                        await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, key))

    # -- dashboard sessions ----------------------------------------------------------------------------------

    async def revoke_session(self, session_id: str, *, forget_after: float, now: float) -> None:
        async def revoke(conn: Conn) -> None:
            await conn.execute("DELETE FROM revoked_sessions WHERE forget_after < %s", (now,))
            await conn.execute(
                "INSERT INTO revoked_sessions (session_id, forget_after) VALUES (%s, %s) "
                "ON CONFLICT (session_id) DO NOTHING",
                (session_id, forget_after),
            )

        await self._write(revoke)

    async def session_revoked(self, session_id: str) -> bool:
        async def revoked(conn: Conn) -> bool:
            return bool(await fetch_all(conn, "SELECT 1 FROM revoked_sessions WHERE session_id = %s", (session_id,)))

        return await self._read(revoked)

    # -- meta and readiness ----------------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        return await self._read(lambda conn: ingest.get_meta(conn, key))

    async def set_meta_if_absent(self, key: str, value: str) -> str:
        return await self._write(lambda conn: ingest.set_meta_if_absent(conn, key, value))

    async def probe_write(self, *, now: float) -> None:
        await self._write(lambda conn: ingest.probe_write(conn, now))

    # -- the write path of a delivery ------------------------------------------------------------------------

    async def ingest(self, delivery: Delivery, *, now: float, handlers: Sequence[str] = ()) -> IngestResult:
        terminal = self.terminal_statuses
        result: IngestResult = await self._write(
            ingest.RecordDelivery(delivery, now=now, terminal_statuses=terminal, handlers=handlers)
        )
        if result.runs_enqueued:
            self.runs_enqueued.set()
        return result

    async def quarantine(self, item: Quarantined, *, now: float) -> int:
        return await self._write(lambda conn: ingest.record_quarantine(conn, item, now=now))

    # -- handler runs ----------------------------------------------------------------------------------------

    async def claim_runs(
        self,
        *,
        owner: str,
        now: float,
        lease_seconds: float,
        handlers: Sequence[str],
        max_attempts: dict[str, int],
        limit: int,
        after: Mapping[str, Sequence[str]] | None = None,
    ) -> list[ClaimedRun]:
        return await self._write(
            lambda conn: runs.claim(
                conn,
                owner=owner,
                now=now,
                lease_seconds=lease_seconds,
                handlers=handlers,
                max_attempts=max_attempts,
                limit=limit,
                after=after,
            )
        )

    async def renew_leases(self, *, owner: str, run_ids: Sequence[int], lease_until: float) -> set[int]:
        return await self._write(lambda conn: runs.renew(conn, owner=owner, run_ids=run_ids, lease_until=lease_until))

    async def finish_run(self, run: ClaimedRun, end: RunEnd, *, owner: str, now: float) -> bool:
        return await self._write(lambda conn: runs.finish(conn, run, end, owner=owner, now=now))

    async def release_runs(self, claimed: Sequence[ClaimedRun], *, owner: str, now: float) -> int:
        return await self._write(lambda conn: runs.release(conn, claimed, owner=owner, now=now))

    async def replay_runs(self, selection: RunSelection, *, now: float, dry_run: bool = False) -> ReplayResult:
        result = await self._write(lambda conn: runs.replay_selection(conn, selection, now=now, dry_run=dry_run))
        if result.replayed:
            self.runs_enqueued.set()
        return result

    async def list_runs(
        self,
        *,
        prediction_id: str | None = None,
        state: str | None = None,
        handler: str | None = None,
        since: float | None = None,
        before_id: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        return await self._read(
            lambda conn: runs.select_runs(
                conn,
                prediction_id=prediction_id,
                state=state,
                handler=handler,
                since=since,
                before_id=before_id,
                limit=limit,
            )
        )

    async def get_run(self, run_id: int) -> dict[str, Any] | None:
        return await self._read(lambda conn: runs.get_run(conn, run_id))

    # -- predictions -----------------------------------------------------------------------------------------

    async def list_predictions(
        self,
        *,
        status: str | None = None,
        model: str | None = None,
        since: float | None = None,
        before: tuple[float, str] | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        return await self._read(
            lambda conn: queries.list_predictions(
                conn, status=status, model=model, since=since, before=before, limit=limit
            )
        )

    async def count_predictions(self, *, status: str | None = None, model: str | None = None) -> int:
        return await self._read(lambda conn: queries.count_predictions(conn, status=status, model=model))

    async def get_prediction(self, prediction_id: str) -> dict[str, Any] | None:
        return await self._read(lambda conn: queries.get_prediction(conn, prediction_id))

    async def ids_starting(self, prefix: str, *, limit: int = 10) -> list[str]:
        return await self._read(lambda conn: queries.ids_starting(conn, prefix, limit=limit))

    async def prediction_state(self, prediction_id: str) -> dict[str, Any] | None:
        return await self._read(lambda conn: submissions.prediction_state(conn, prediction_id))

    async def models(self) -> list[str]:
        return await self._read(stats.models)

    async def models_of(self, prediction_ids: Sequence[str]) -> dict[str, str | None]:
        return await self._read(lambda conn: queries.models_of(conn, list(prediction_ids)))

    async def open_predictions(
        self, *, seen_before: float, seen_after: float, limit: int = 500
    ) -> list[dict[str, Any]]:
        return await self._read(
            lambda conn: submissions.open_predictions(conn, seen_before=seen_before, seen_after=seen_after, limit=limit)
        )

    async def stats(self, *, now: float) -> LedgerStats:
        return await self._read(lambda conn: stats.ledger_stats(conn, now=now))

    # -- downloads -------------------------------------------------------------------------------------------

    async def record_download(self, download: Download, *, now: float) -> None:
        await self._write(lambda conn: runs.record_download(conn, download, now=now))

    async def list_downloads(self, prediction_id: str) -> list[dict[str, Any]]:
        return await self._read(lambda conn: runs.list_downloads(conn, prediction_id))

    async def get_download(self, download_id: int) -> dict[str, Any] | None:
        return await self._read(lambda conn: queries.get_download(conn, download_id))

    # -- the submitter's submissions -------------------------------------------------------------------------

    async def begin_submission(
        self, *, reference: str, job_key: str | None, model: str, input_json: str, webhook_url: str | None, now: float
    ) -> bool:
        return await self._write(
            lambda conn: submissions.begin(
                conn,
                reference=reference,
                job_key=job_key,
                model=model,
                input_json=input_json,
                webhook_url=webhook_url,
                now=now,
            )
        )

    async def record_submitted(
        self, *, reference: str, prediction: dict[str, Any], resolved_by: str, now: float
    ) -> bool:
        terminal = self.terminal_statuses
        return await self._write(
            lambda conn: submissions.record_submitted(
                conn,
                reference=reference,
                prediction=prediction,
                resolved_by=resolved_by,
                now=now,
                terminal_statuses=terminal,
            )
        )

    async def record_submission_outcome(self, *, reference: str, state: str, error: str, now: float) -> None:
        await self._write(
            lambda conn: submissions.record_outcome(conn, reference=reference, state=state, error=error, now=now)
        )

    async def get_submission(self, reference: str) -> dict[str, Any] | None:
        return await self._read(lambda conn: submissions.get(conn, reference))

    async def submissions_by_job_keys(self, job_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        return await self._read(lambda conn: submissions.by_job_keys(conn, list(job_keys)))

    async def doubtful_submissions(self, *, sent_before: float, limit: int = 500) -> list[dict[str, Any]]:
        return await self._read(lambda conn: submissions.doubtful(conn, sent_before=sent_before, limit=limit))

    async def owned_prediction_ids(self, prediction_ids: Sequence[str]) -> set[str]:
        return await self._read(lambda conn: submissions.owned_ids(conn, list(prediction_ids)))

    async def prediction_with_reference(self, reference: str) -> str | None:
        return await self._read(lambda conn: submissions.prediction_with_reference(conn, reference))
