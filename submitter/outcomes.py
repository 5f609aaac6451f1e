"""What the submitter's operations return: plain dataclasses, JSON-friendly through ``as_dict``."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

SubmitOutcome = Literal["submitted", "resolved", "skipped", "unknown", "failed", "invalid"]


@dataclasses.dataclass(frozen=True, slots=True)
class Submission:
    """One job sent (or found already sent). ``prediction_id`` is ``None`` while the outcome is unknown."""

    reference: str
    model: str
    input: dict[str, Any]
    outcome: SubmitOutcome
    prediction_id: str | None = None
    status: str | None = None
    webhook_url: str | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()
    job_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(slots=True)
class BatchSummary:
    """Counts of a batch run by outcome, and the jobs that did not go through, with why.

    ``retried``: requests sent again, by reason (rate_limited, unavailable, server_error, no_connection,
    no_answer); ``ambiguous``: submits that may have created a task, by cause (no_answer, server_error), each
    then looked up; ``resent``: jobs sent again because the lookup proved no task was created.
    """

    total: int = 0
    submitted: int = 0
    resolved: int = 0
    skipped: int = 0
    unknown: int = 0
    failed: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)
    retried: dict[str, int] = dataclasses.field(default_factory=dict)
    ambiguous: dict[str, int] = dataclasses.field(default_factory=dict)
    resent: int = 0

    def add(self, outcome: SubmitOutcome, line: int, error: str | None = None) -> None:
        if outcome == "invalid":
            outcome = "failed"
        setattr(self, outcome, getattr(self, outcome) + 1)
        if error:
            self.problems.append(f"line {line}: {error}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(slots=True)
class ReconcileCounts:
    """What one reconciliation pass did.

    ``missed``: a final status found at the provider that no webhook had brought (ingested now);
    ``progressed``: a non-final status moved on; ``open``: still running; ``gone``: the provider no longer
    knows the task; ``resolved``/``not_created``/``still_unknown``: doubtful submits looked up;
    ``too_recent``: doubtful submits sent too recently to look up yet (counted in ``still_unknown`` too), whose
    request may still be on its way.
    """

    checked: int = 0
    missed: int = 0
    progressed: int = 0
    open: int = 0
    gone: int = 0
    errors: int = 0
    resolved: int = 0
    not_created: int = 0
    still_unknown: int = 0
    too_recent: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)
