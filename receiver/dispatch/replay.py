"""Replay: make finished runs pending again, for the CLI and the JSON API alike.

A run is replayable once it has ended (dead, or succeeded when someone wants its effect again). A pending
run is already waiting and a running one is leased; both are reported as skipped, never touched.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from typing import Any

from receiver.store import runs as store


@dataclasses.dataclass(frozen=True, slots=True)
class Selection:
    """Which runs to replay: one run, a prediction's runs, or the dead runs; narrowed by handler and time."""

    run_id: int | None = None
    prediction_id: str | None = None
    dead: bool = False
    handler: str | None = None
    since: float | None = None

    def __post_init__(self) -> None:
        chosen = [self.run_id is not None, self.prediction_id is not None, self.dead]
        if sum(chosen) != 1:
            raise ValueError("choose exactly one of a run id, a prediction id, or the dead runs")


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayResult:
    matched: list[dict[str, Any]]
    replayed: list[int]
    dry_run: bool

    @property
    def would_replay(self) -> list[int]:
        return [run["id"] for run in self.matched if run["state"] in store.REPLAYABLE]

    @property
    def left_alone(self) -> list[dict[str, Any]]:
        """Matched runs that are not finished (pending or running): never touched."""
        return [run for run in self.matched if run["state"] not in store.REPLAYABLE]

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "matched": len(self.matched),
            "replayed": self.replayed,
            "would_replay": self.would_replay if self.dry_run else [],
            "left_alone": [{"id": run["id"], "state": run["state"]} for run in self.left_alone],
        }


Job = Callable[[sqlite3.Connection], ReplayResult]


def replay_job(
    selection: Selection, *, now: float, dry_run: bool = False
) -> Callable[[sqlite3.Connection], ReplayResult]:
    """A writer job: select the runs, and unless ``dry_run`` make the finished ones pending at ``now``."""

    def job(conn: sqlite3.Connection) -> ReplayResult:
        matched = store.select_runs(
            conn,
            run_id=selection.run_id,
            prediction_id=selection.prediction_id,
            state="dead" if selection.dead else None,
            handler=selection.handler,
            since=selection.since,
        )
        ids = [run["id"] for run in matched]
        replayed = [] if dry_run else store.replay(conn, ids, now=now)
        return ReplayResult(matched=matched, replayed=replayed, dry_run=dry_run)

    return job
