"""The storage seam: ``Ledger``, the one interface every part of wavehook stores and reads through.

``open_ledger(settings)`` is the only way a process opens the ledger (``serve``, ``worker``, every command,
the submitter, the reconciler): it picks the backend from ``settings.db`` (a file path: SQLite; a
``postgresql://`` URL: PostgreSQL), creates or upgrades the schema, and returns a ledger ready for use.
Nothing above this seam sees a connection, a cursor or SQL: methods take and return plain values
(``receiver.store.records``) and rows as dicts keyed by column name.

Contract for implementers (each point is checked by ``tests/receiver/store/test_ledger.py``, which runs
against every backend through the ``ledger_factory`` fixture):

- **Committed means durable.** A write method returns only after its transaction has committed in a way
  that survives a crash of the process and of the machine (SQLite: WAL with ``synchronous=FULL``;
  PostgreSQL: ``synchronous_commit=on``). The webhook endpoint answers 2xx on that return and on nothing
  earlier. A failure to commit raises ``StorageUnavailable`` (answered 503, so the provider retries) and
  leaves nothing of the call behind.
- **One call, one transaction.** Each write method is atomic on its own: ``ingest`` stores the event, moves
  the prediction and enqueues its handler runs together or not at all. A backend may commit several
  callers' writes in one transaction (group commit) as long as each caller is answered after the commit
  that holds its write, and one caller's failure does not fail the others.
- **Idempotent where the world repeats itself.** ``ingest`` of the same (webhook-id, body) twice stores one
  event and says ``duplicate``; a run is enqueued at most once per (prediction, terminal status, handler);
  ``quarantine`` of the same (webhook-id, body, reason) counts instead of adding a row;
  ``set_meta_if_absent`` keeps the first value written by any process. Idempotency comes from unique keys
  inside the statement, never from a read followed by a write.
- **A prediction never moves backwards** (``receiver.statuses.rank``): an event that would move it back is
  stored with ``applied`` false. A final status is reached only through ``ingest``, which is what enqueues
  the handler runs; ``record_submitted`` never writes a final status.
- **Claims are exclusive across processes and machines.** ``claim_runs`` leases each due run to exactly one
  owner (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``FOR UPDATE SKIP LOCKED``); ``renew_leases``,
  ``finish_run`` and ``release_runs`` change a run only while the caller still holds its lease.
- **Wake-ups.** ``runs_enqueued`` is set whenever runs become due through this ledger object (an ingest
  that enqueued runs, a replay). A backend that can hear other processes (PostgreSQL ``LISTEN/NOTIFY``)
  sets it for their runs too; a dispatcher also polls, so a backend that cannot is still correct.
- **Reads** see committed data only, and never block the event loop (blocking drivers run in threads).
- **Time** is whatever the caller passes as ``now`` (Unix seconds): backends never read a clock, so tests
  move time by hand and every process agrees on what was written when.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import structlog

from receiver.store import downloads, meta, predictions, runs, sessions, stats, submissions
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
    from receiver.store.query import Query

T = TypeVar("T")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
CORRELATION_SECRET = "correlation_secret"
SESSION_SECRET = "session_secret"


def _query(make: Callable[..., Query[T]], /, **arguments: Any) -> Callable[[], Query[T]]:
    """A query to run, made afresh for each run (a group commit may run a job again after a rollback)."""
    return functools.partial(make, **arguments)


class Ledger(abc.ABC):
    """Everything wavehook keeps. Open with ``open_ledger``; close with ``close`` (or ``async with``).

    Every method below is written once, over the shared queries of ``receiver.store`` (see
    ``receiver.store.query``); a backend provides only what truly differs: how it opens and closes, how a read
    or a write gets a connection and runs a query there (``_read``, ``_write``), and the write path of a
    delivery (``_record_delivery``, ``_record_quarantine``), which each backend tunes for its engine.
    """

    def __init__(self, settings: Settings) -> None:
        self.terminal_statuses = settings.terminal_statuses
        self.runs_enqueued = asyncio.Event()

    # -- what a backend provides -----------------------------------------------------------------------------

    @abc.abstractmethod
    async def open(self) -> None:
        """Create or upgrade the schema (safe while other processes do the same) and start what writes."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish every write already accepted, then release connections; later writes are refused."""

    @abc.abstractmethod
    async def _read(self, query: Callable[[], Query[T]], *, snapshot: bool = False) -> T:
        """Run ``query()`` on a connection for reads; ``snapshot``: all its statements see one moment."""

    @abc.abstractmethod
    async def _write(self, query: Callable[[], Query[T]]) -> T:
        """Run ``query()`` in a write transaction (a group commit); return once that has committed."""

    @abc.abstractmethod
    async def _record_delivery(
        self, delivery: Delivery, *, now: float, terminal_statuses: tuple[str, ...], handlers: Sequence[str]
    ) -> IngestResult:
        """``ingest``'s committed write: the webhook's hot path, each backend's own statements."""

    @abc.abstractmethod
    async def _record_quarantine(self, item: Quarantined, *, now: float) -> int:
        """``quarantine``'s committed write."""

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        """Hold the ledger-wide lock ``name`` while the block runs: True if this process got it, False if
        another holds it (the block then skips its work). The SQLite ledger lives on one machine, whose
        passes are idempotent: it always says True. PostgreSQL uses an advisory lock."""
        yield True

    # -- meta and readiness ----------------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        return await self._read(_query(meta.get_meta, key=key))

    async def set_meta_if_absent(self, key: str, value: str) -> str:
        """Store ``value`` under ``key`` unless a value is there already; return the value now stored."""
        return await self._write(_query(meta.set_meta_if_absent, key=key, value=value))

    async def probe_write(self, *, now: float) -> None:
        """A real, committed write, for readiness: proves the storage, the disk and the locks accept one."""
        await self._write(_query(meta.probe_write, now=now))

    async def correlation_secret(self) -> str:
        """The ledger's secret behind correlation tokens, made once and shared by every process using it."""
        return await self.get_meta(CORRELATION_SECRET) or await self.set_meta_if_absent(
            CORRELATION_SECRET, secrets.token_urlsafe(32)
        )

    async def session_secret(self) -> str:
        """The ledger's key behind dashboard sessions: any instance on this ledger accepts any login."""
        return await self.get_meta(SESSION_SECRET) or await self.set_meta_if_absent(
            SESSION_SECRET, secrets.token_urlsafe(32)
        )

    # -- the write path of a delivery ------------------------------------------------------------------------

    async def ingest(self, delivery: Delivery, *, now: float, handlers: Sequence[str] = ()) -> IngestResult:
        """Store the event, move its prediction, and (when this makes it final) enqueue one run per name in
        ``handlers``, all in one transaction. ``handlers`` is ignored unless the status is final."""
        result = await self._record_delivery(
            delivery, now=now, terminal_statuses=self.terminal_statuses, handlers=handlers
        )
        if result.runs_enqueued:
            self.runs_enqueued.set()
        return result

    async def quarantine(self, item: Quarantined, *, now: float) -> int:
        """Keep a signed delivery that cannot become an event; a repeat only bumps its count. Returns its id."""
        return await self._record_quarantine(item, now=now)

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
        """Lease up to ``limit`` due runs of ``handlers`` (pending and due, or running with an expired lease),
        oldest due first, each with a new attempt. A run taken back from a dead owner with no attempt left
        (``max_attempts`` per handler) comes back ``exhausted``, already dead.

        ``after`` maps a handler to those whose runs for the same outcome must have succeeded before its run
        is claimed; when one of those ended dead, the waiting run ends dead without running, its error
        starting ``NOT_RUN_PREFIX`` and naming the dependency. A dependency without a run for that outcome
        does not hold anything back. Each claimed run carries its prediction's kept ``downloads``."""
        return await self._write(_query(runs.claim, **_arguments(locals())))

    async def renew_leases(self, *, owner: str, run_ids: Sequence[int], lease_until: float) -> set[int]:
        """Extend the leases ``owner`` still holds; returns the ids it still holds."""
        return await self._write(_query(runs.renew, owner=owner, run_ids=run_ids, lease_until=lease_until))

    async def finish_run(self, run: ClaimedRun, end: RunEnd, *, owner: str, now: float) -> bool:
        """Record the attempt's end and move the run; False (the run untouched) if ``owner`` lost its lease."""
        return await self._write(_query(runs.finish, run=run, end=end, owner=owner, now=now))

    async def release_runs(self, claimed: Sequence[ClaimedRun], *, owner: str, now: float) -> int:
        """Give back runs interrupted by a shutdown: pending again at once, the attempt not counted."""
        return await self._write(_query(runs.release, runs=claimed, owner=owner, now=now))

    async def replay_runs(self, selection: RunSelection, *, now: float, dry_run: bool = False) -> ReplayResult:
        """Make the finished (dead or succeeded) runs of the selection pending with fresh attempts."""
        result = await self._write(_query(runs.replay_selection, selection=selection, now=now, dry_run=dry_run))
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
        """Runs matching every filter given, newest first; ``before_id`` is the cursor of the last one seen."""
        return await self._read(_query(runs.select_runs, **_arguments(locals())))

    async def get_run(self, run_id: int) -> dict[str, Any] | None:
        """One run with its ``attempt_history`` (a list of attempt rows, oldest first)."""
        return await self._read(_query(runs.get_run, run_id=run_id))

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
        """Newest-updated first; ``before`` is the (updated_at, id) cursor of the last row already seen."""
        return await self._read(_query(predictions.list_predictions, **_arguments(locals())))

    async def count_predictions(self, *, status: str | None = None, model: str | None = None) -> int:
        return await self._read(_query(predictions.count_predictions, status=status, model=model))

    async def get_prediction(self, prediction_id: str) -> dict[str, Any] | None:
        """One prediction with its ``events``, ``quarantined`` deliveries, ``handler_runs`` (each with its
        ``attempt_history``) and ``downloads``."""
        return await self._read(_query(predictions.get_prediction, prediction_id=prediction_id))

    async def ids_starting(self, prefix: str, *, limit: int = 10) -> list[str]:
        """Prediction ids beginning with ``prefix`` (the shortened ids listings show), sorted, at most ``limit``."""
        return await self._read(_query(predictions.ids_starting, prefix=prefix, limit=limit))

    async def prediction_state(self, prediction_id: str) -> dict[str, Any] | None:
        """``status``, ``status_rank`` and ``reference`` of one prediction: the cheap read a waiter repeats."""
        return await self._read(_query(predictions.prediction_state, prediction_id=prediction_id))

    async def models(self) -> list[str]:
        """Every model the ledger has seen, sorted."""
        return await self._read(_query(stats.models))

    async def models_of(self, prediction_ids: Sequence[str]) -> dict[str, str | None]:
        """prediction id -> its model."""
        return await self._read(_query(predictions.models_of, prediction_ids=prediction_ids))

    async def open_predictions(
        self, *, seen_before: float, seen_after: float, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Predictions without a final status, first seen (or submitted) in the window, oldest first."""
        return await self._read(_query(predictions.open_predictions, **_arguments(locals())))

    async def stats(self, *, now: float) -> LedgerStats:
        """Every aggregate in one consistent snapshot."""
        return await self._read(_query(stats.ledger_stats, now=now), snapshot=True)

    # -- downloads -------------------------------------------------------------------------------------------

    async def record_download(self, download: Download, *, now: float) -> None:
        """Record (or, for the same prediction and URL, replace) a kept output."""
        await self._write(_query(downloads.record_download, download=download, now=now))

    async def list_downloads(self, prediction_id: str) -> list[dict[str, Any]]:
        return await self._read(_query(downloads.list_downloads, prediction_id=prediction_id))

    async def get_download(self, download_id: int) -> dict[str, Any] | None:
        return await self._read(_query(downloads.get_download, download_id=download_id))

    # -- dashboard sessions ----------------------------------------------------------------------------------

    async def revoke_session(self, session_id: str, *, forget_after: float, now: float) -> None:
        """End a dashboard session before its cookie expires (logout); the row is forgotten after
        ``forget_after``, once no cookie of that session can still be valid."""
        await self._write(_query(sessions.revoke, session_id=session_id, forget_after=forget_after, now=now))

    async def session_revoked(self, session_id: str) -> bool:
        return await self._read(_query(sessions.is_revoked, session_id=session_id))

    # -- the submitter's submissions -------------------------------------------------------------------------

    async def begin_submission(
        self, *, reference: str, job_key: str | None, model: str, input_json: str, webhook_url: str | None, now: float
    ) -> bool:
        """Record the intent to send, before sending. False: this reference exists and did not fail."""
        return await self._write(_query(submissions.begin, **_arguments(locals())))

    async def record_submitted(
        self, *, reference: str, prediction: dict[str, Any], resolved_by: str, now: float
    ) -> bool:
        """Tie ``reference`` to the provider's task and merge it into the predictions (never with a final
        status). False, and nothing written, when another submission already owns that task."""
        return await self._write(
            _query(submissions.record_submitted, **_arguments(locals()), terminal_statuses=self.terminal_statuses)
        )

    async def record_submission_outcome(self, *, reference: str, state: str, error: str, now: float) -> None:
        """Mark a submission ``unknown`` (the task may exist) or ``failed`` (none was created)."""
        await self._write(_query(submissions.record_outcome, reference=reference, state=state, error=error, now=now))

    async def get_submission(self, reference: str) -> dict[str, Any] | None:
        return await self._read(_query(submissions.get, reference=reference))

    async def submissions_by_job_keys(self, job_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        return await self._read(_query(submissions.by_job_keys, job_keys=job_keys))

    async def doubtful_submissions(self, *, sent_before: float, limit: int = 500) -> list[dict[str, Any]]:
        """Submissions whose outcome is not known (sending or unknown), sent before ``sent_before``."""
        return await self._read(_query(submissions.doubtful, sent_before=sent_before, limit=limit))

    async def owned_prediction_ids(self, prediction_ids: Sequence[str]) -> set[str]:
        """Which of these tasks a submission or a referenced webhook already ties to one of our jobs."""
        return await self._read(_query(submissions.owned_ids, prediction_ids=prediction_ids))

    async def prediction_with_reference(self, reference: str) -> str | None:
        """The task a webhook carrying ``reference`` already told us about, if one did."""
        return await self._read(_query(predictions.prediction_with_reference, reference=reference))


def _arguments(scope: dict[str, Any]) -> dict[str, Any]:
    """A method's keyword arguments, from its ``locals()`` at the top (everything but ``self``)."""
    return {name: value for name, value in scope.items() if name != "self"}


def is_postgres_url(db: str) -> bool:
    return db.strip().lower().startswith(POSTGRES_SCHEMES)


def ledger_for(settings: Settings) -> Ledger:
    """The backend ``settings.db`` names, not yet opened (``open_ledger`` opens it)."""
    if is_postgres_url(settings.db):
        from receiver.store.postgres.driver import require_driver

        require_driver()  # a clear ConfigError naming the extra to install, never an ImportError
        from receiver.store.postgres.ledger import PostgresLedger

        return PostgresLedger(settings)
    from receiver.store.sqlite import SQLiteLedger

    return SQLiteLedger(settings)


async def open_ledger(settings: Settings) -> Ledger:
    """Open the ledger ``settings.db`` names: schema created or upgraded, ready for reads and writes."""
    from receiver.store.location import describe, is_new

    ledger = ledger_for(settings)
    created = is_new(settings.db)
    await ledger.open()
    structlog.get_logger().info("ledger_opened", ledger=describe(settings.db), created=created)
    return ledger
