"""Following a batch to the end: its jobs' predictions watched on the ledger until each is final, and the jobs
of a batch file (or one job key) found again for ``list``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from receiver.statuses import TERMINAL
from receiver.store.ledger import Ledger
from submitter import uploads
from submitter.batch import Job


def resolve_paths(jobs: Iterable[Job], base: Path) -> list[Job]:
    """Jobs whose relative local image paths are made relative to ``base`` (the batch file's directory), as a
    reader of the file means them, whatever directory the command runs from. Keys are left as they were."""
    resolved = []
    for job in jobs:
        inputs = dict(job.input)
        for field, raw in uploads.local_paths(job.model, inputs):
            path = Path(raw).expanduser()
            if path.is_absolute():
                continue
            value, absolute = inputs[field], str(base / path)
            if isinstance(value, list):
                inputs[field] = [absolute if item == raw else item for item in value]
            else:
                inputs[field] = absolute
        resolved.append(Job(job.line, job.key, job.model, inputs))
    return resolved


async def follow(
    ledger: Ledger,
    prediction_ids: Sequence[str],
    *,
    deadline: float,
    sleep: Callable[[float], Awaitable[None]],
    on_final: Callable[[dict[str, Any]], None] = lambda _row: None,
    interval: float = 0.5,
    monotonic: Callable[[], float] = time.monotonic,
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each prediction's ledger row once final (``on_final`` told as each one ends), and the ids still open when
    ``deadline`` seconds have passed. One indexed read per open prediction per ``interval``; no provider call."""
    start = monotonic()
    open_ids = list(dict.fromkeys(prediction_ids))
    final: dict[str, dict[str, Any]] = {}
    while open_ids:
        still = []
        for prediction_id in open_ids:
            state = await ledger.prediction_state(prediction_id)
            if state is not None and state["status_rank"] >= TERMINAL:
                row = await ledger.get_prediction(prediction_id)
                assert row is not None
                final[prediction_id] = row
                on_final(row)
            else:
                still.append(prediction_id)
        open_ids = still
        if open_ids and monotonic() - start >= deadline:
            break
        if open_ids:
            await sleep(interval)
    return final, open_ids


async def jobs_predictions(ledger: Ledger, job_keys: Sequence[str]) -> list[dict[str, Any]]:
    """The predictions of these jobs (by job key), newest update first; jobs never sent are left out."""
    submissions = await ledger.submissions_by_job_keys(job_keys)
    rows = []
    for row in submissions.values():
        if row.get("prediction_id"):
            found = await ledger.get_prediction(str(row["prediction_id"]))
            if found is not None:
                rows.append({**found, "job_key": row["job_key"]})
    return sorted(rows, key=lambda r: -(r.get("updated_at") or 0))
