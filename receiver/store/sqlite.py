"""The SQLite ledger: one file, WAL, ``synchronous=FULL``; writes through the group-commit ``Writer``, reads
through the ``Reader``'s per-thread connections. The SQL itself lives in one module per table group."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from receiver.store import downloads, events, meta, predictions, runs, sessions, submissions
from receiver.store import stats as aggregates
from receiver.store.connection import open_database
from receiver.store.ledger import Ledger
from receiver.store.reader import Reader
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
from receiver.store.writer import Writer

if TYPE_CHECKING:
    from receiver.delivery import Delivery
    from receiver.settings import Settings

T = TypeVar("T")


class SQLiteLedger(Ledger):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.path = settings.db_path
        self.busy_timeout_ms = settings.busy_timeout_ms
        self.terminal_statuses = settings.terminal_statuses
        self.writer = Writer(self.path, busy_timeout_ms=self.busy_timeout_ms)
        self.reader = Reader(self.path, busy_timeout_ms=self.busy_timeout_ms)

    async def open(self) -> None:
        # Creating the file and migrating it takes a file lock other processes may hold: off the event loop.
        await asyncio.to_thread(open_database, self.path, busy_timeout_ms=self.busy_timeout_ms)
        self.writer.start()

    async def close(self) -> None:
        await asyncio.to_thread(self.writer.stop)
        self.reader.close()

    async def _write(self, job: Callable[[sqlite3.Connection], T]) -> T:
        return await self.writer.run(job)

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        return await self.reader.run(query)

    # -- meta and readiness ----------------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        return await self._read(lambda conn: meta.get_meta(conn, key))

    async def set_meta_if_absent(self, key: str, value: str) -> str:
        return await self._write(lambda conn: meta.set_meta_if_absent(conn, key, value))

    async def probe_write(self, *, now: float) -> None:
        await self._write(lambda conn: meta.probe_write(conn, now))

    # -- the write path of a delivery ------------------------------------------------------------------------

    async def ingest(self, delivery: Delivery, *, now: float, handlers: Sequence[str] = ()) -> IngestResult:
        terminal = self.terminal_statuses
        result = await self.writer.run(
            lambda conn: events.record_delivery(conn, delivery, now=now, terminal_statuses=terminal, handlers=handlers)
        )
        if result.runs_enqueued:
            self.runs_enqueued.set()
        return result

    async def quarantine(self, item: Quarantined, *, now: float) -> int:
        return await self._write(lambda conn: events.record_quarantine(conn, item, now=now))

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
            lambda conn: predictions.list_predictions(
                conn, status=status, model=model, since=since, before=before, limit=limit
            )
        )

    async def count_predictions(self, *, status: str | None = None, model: str | None = None) -> int:
        return await self._read(lambda conn: predictions.count_predictions(conn, status=status, model=model))

    async def get_prediction(self, prediction_id: str) -> dict[str, Any] | None:
        return await self._read(lambda conn: predictions.get_prediction(conn, prediction_id))

    async def ids_starting(self, prefix: str, *, limit: int = 10) -> list[str]:
        return await self._read(lambda conn: predictions.ids_starting(conn, prefix, limit=limit))

    async def prediction_state(self, prediction_id: str) -> dict[str, Any] | None:
        return await self._read(lambda conn: predictions.prediction_state(conn, prediction_id))

    async def models(self) -> list[str]:
        return await self._read(aggregates.models)

    async def models_of(self, prediction_ids: Sequence[str]) -> dict[str, str | None]:
        return await self._read(lambda conn: predictions.models_of(conn, list(prediction_ids)))

    async def open_predictions(
        self, *, seen_before: float, seen_after: float, limit: int = 500
    ) -> list[dict[str, Any]]:
        return await self._read(
            lambda conn: predictions.open_predictions(conn, seen_before=seen_before, seen_after=seen_after, limit=limit)
        )

    async def stats(self, *, now: float) -> LedgerStats:
        return await self._read(lambda conn: aggregates.ledger_stats(conn, now=now))

    # -- downloads -------------------------------------------------------------------------------------------

    async def record_download(self, download: Download, *, now: float) -> None:
        await self._write(lambda conn: downloads.record_download(conn, download, now=now))

    async def list_downloads(self, prediction_id: str) -> list[dict[str, Any]]:
        return await self._read(lambda conn: downloads.list_downloads(conn, prediction_id))

    async def get_download(self, download_id: int) -> dict[str, Any] | None:
        return await self._read(lambda conn: downloads.get_download(conn, download_id))

    # -- dashboard sessions ----------------------------------------------------------------------------------

    async def revoke_session(self, session_id: str, *, forget_after: float, now: float) -> None:
        await self._write(lambda conn: sessions.revoke(conn, session_id, forget_after=forget_after, now=now))

    async def session_revoked(self, session_id: str) -> bool:
        return await self._read(lambda conn: sessions.is_revoked(conn, session_id))

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
        return await self._read(lambda conn: predictions.prediction_with_reference(conn, reference))
