"""The plain values that cross the ledger seam: what callers hand to a ``Ledger`` and what every backend returns.

Rows read back (a prediction, a run, a submission, a download) are dicts keyed by the column names of the
SQLite schema (``receiver/store/schema.py`` is the reference), with Unix-second floats for times; a
prediction's JSON columns (``input``, ``outputs``, ``has_nsfw_contents``, ``timings``) arrive decoded.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# Handler runs (the outbox): every state a run can be in, and those a replay may restart.
RUN_STATES = ("pending", "running", "succeeded", "dead")
REPLAYABLE = ("dead", "succeeded")
# Runs still owed work: waiting for their turn, or held by a dispatcher right now.
OPEN_RUN_STATES = ("pending", "running")
NOT_RUN_PREFIX = "not run: "  # the error of a run whose dependency (after=) ended dead
LOST_LEASE = "lease expired: the worker running this attempt stopped renewing it (crashed or was killed)"

# Submissions: sending (written before the request leaves) | submitted | unknown (the task may exist) | failed.
SENDING, SUBMITTED, UNKNOWN, FAILED = "sending", "submitted", "unknown", "failed"


@dataclasses.dataclass(frozen=True, slots=True)
class IngestResult:
    """What one ingest did. ``duplicate``: the same (webhook-id, body) was stored before, nothing changed;
    ``conflict``: another body came under this webhook-id earlier (both kept); ``applied``: the prediction
    moved to this event's status; ``runs_enqueued``: handler runs this event added to the outbox."""

    event_id: int
    duplicate: bool
    conflict: bool = False
    applied: bool = False
    runs_enqueued: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Quarantined:
    """A signed delivery that cannot become an event (unusable body, stale or future timestamp)."""

    webhook_id: str
    body: bytes
    body_sha256: str
    reason: str
    detail: str
    prediction_id: str | None = None
    webhook_timestamp: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimedRun:
    """A handler run leased to one owner, with its prediction's row as it was at the claim."""

    id: int
    attempt_id: int
    prediction_id: str
    status: str
    handler: str
    attempt: int
    prediction: dict[str, Any]
    exhausted: bool = False  # claimed back from a dead worker with no attempt left: already marked dead
    downloads: tuple[dict[str, Any], ...] = ()  # the prediction's kept outputs at the claim


@dataclasses.dataclass(frozen=True, slots=True)
class RunEnd:
    """How an attempt ended. ``state``: where the run goes (pending to retry, succeeded, dead); ``outcome``:
    what the attempt records (succeeded, failed, retry, timeout, lost)."""

    state: str
    outcome: str
    next_at: float | None = None  # when a run going back to pending is due again
    error: str | None = None
    traceback: str | None = None
    duration_ms: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RunSelection:
    """Which runs to replay: one run, a prediction's runs, or the dead runs; narrowed by handler and time."""

    run_id: int | None = None
    prediction_id: str | None = None
    dead: bool = False
    handler: str | None = None
    since: float | None = None  # only runs that last changed at or after this time

    def __post_init__(self) -> None:
        chosen = [self.run_id is not None, self.prediction_id is not None, self.dead]
        if sum(chosen) != 1:
            raise ValueError("choose exactly one of a run id, a prediction id, or the dead runs")


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayResult:
    """The runs a selection matched (newest first), and the ids made pending again (none on a dry run)."""

    matched: list[dict[str, Any]]
    replayed: list[int]
    dry_run: bool

    @property
    def would_replay(self) -> list[int]:
        return [run["id"] for run in self.matched if run["state"] in REPLAYABLE]

    @property
    def left_alone(self) -> list[dict[str, Any]]:
        """Matched runs that are not finished (pending or running): never touched."""
        return [run for run in self.matched if run["state"] not in REPLAYABLE]

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "matched": len(self.matched),
            "replayed": self.replayed,
            "would_replay": self.would_replay if self.dry_run else [],
            "left_alone": [{"id": run["id"], "state": run["state"]} for run in self.left_alone],
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Download:
    """An output kept by the download handler: where it came from, where it is, and what it holds."""

    prediction_id: str
    url: str
    path: str
    size: int
    sha256: str
    content_type: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class LedgerStats:
    """The ledger's aggregate numbers, read in one consistent snapshot."""

    predictions: list[tuple[str, str, int]]  # (model, status, count)
    runs: list[tuple[str, str, int]]  # (handler, state, count)
    attempts: list[tuple[str, str, int]]  # (handler, outcome, count) of finished attempts
    quarantined: list[tuple[str, int]]  # (reason, deliveries)
    missed_webhooks: int
    outbox_depth: int
    oldest_pending_age: float | None  # seconds; None when nothing is pending

    @property
    def dead_runs(self) -> int:
        return sum(count for _handler, state, count in self.runs if state == "dead")

    def as_json(self) -> dict[str, object]:
        return {
            "predictions": [{"model": m, "status": s, "count": c} for m, s, c in self.predictions],
            "runs": [{"handler": h, "state": s, "count": c} for h, s, c in self.runs],
            "quarantined": sum(count for _reason, count in self.quarantined),
            "missed_webhooks": self.missed_webhooks,
            "dead_runs": self.dead_runs,
            "outbox_depth": self.outbox_depth,
            "oldest_pending_age_seconds": self.oldest_pending_age,
        }
