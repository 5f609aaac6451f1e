"""Batches: a JSON Lines file of jobs, every job checked before any is sent, sent with bounded concurrency
(overall and per model), and resumable: a job already in the ledger is not sent again.

A line is ``{"model": "<model id>", "input": {...}, "key": "<optional>"}``. A job's key is its ``key``, or
else a digest of its model and input, numbered when the same job appears more than once in the file.

A job whose submit stayed doubtful (its answer lost, or a 5xx) is looked up again once the grace period since
it was sent has passed, before the run ends: found, it counts as resolved; proven never created, it is sent
again. The summary counts the requests sent again by reason, the doubtful submits by cause, and the resends.

This module owns sending a job; it sees the submitter only as a ``Sender`` (``AsyncSubmitter`` is one), so the
dependency runs one way: ``submitter.service`` imports this module, never the reverse.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from receiver.store.records import SENDING, SUBMITTED, UNKNOWN
from submitter.callback import new_reference
from submitter.errors import AmbiguousSubmit, BatchError, NotCreated, SubmitterError, UploadError, ValidationError
from submitter.outcomes import BatchSummary, Submission
from submitter.prepared import prepare

if TYPE_CHECKING:
    from receiver.settings import Settings
    from receiver.store.ledger import Ledger
    from submitter.client import AsyncProviderClient
    from submitter.resolve import Resolution
    from submitter.uploads import Checked

logger = structlog.get_logger()
SETTLE_PASSES = 3
# A job whose doubtful submit a lookup proved was never created is sent again, at most this many times.
RESENDS = 3


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    line: int
    key: str
    model: str
    input: dict[str, Any]
    # its local image files, once ``check_jobs`` has checked them (None before)
    files: Checked | None = dataclasses.field(default=None, compare=False, repr=False)


class Sender(Protocol):
    """What a batch needs of the submitter: its settings, ledger and client, its clock, and one send."""

    settings: Settings
    ledger: Ledger
    client: AsyncProviderClient
    # doubtful submits by cause (``AmbiguousSubmit.cause``), counted by ``send``
    ambiguous: Counter[str]
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]

    async def send(
        self, model: str, inputs: dict[str, Any], *, job_key: str | None = None, reference: str | None = None
    ) -> Submission: ...

    async def upload(self, model: str, inputs: dict[str, Any], files: Checked | None = None) -> dict[str, Any]: ...

    async def lookup(self, sub: dict[str, Any]) -> Resolution: ...


def _digest(model: str, inputs: dict[str, Any]) -> str:
    canonical = json.dumps({"model": model, "input": inputs}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def read_jobs(lines: Iterable[str]) -> list[Job]:
    """Parse a JSON Lines batch; ``BatchError`` lists every malformed line at once."""
    jobs: list[Job] = []
    problems: list[str] = []
    seen: Counter[str] = Counter()
    keys: dict[str, int] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            data = json.loads(text)
        except ValueError as exc:
            problems.append(f"line {number}: not valid JSON ({exc})")
            continue
        model, inputs = (data.get("model"), data.get("input", {})) if isinstance(data, dict) else (None, None)
        if not isinstance(model, str) or not model or not isinstance(inputs, dict):
            problems.append(f'line {number}: expected {{"model": "<model id>", "input": {{...}}}}')
            continue
        explicit = data.get("key")
        if explicit is not None and not isinstance(explicit, str | int):
            problems.append(f"line {number}: key must be a string")
            continue
        digest = _digest(model, inputs)
        seen[digest] += 1
        key = str(explicit) if explicit is not None else f"{digest}-{seen[digest]}"
        if key in keys:
            problems.append(f"line {number}: key {key!r} is also the key of line {keys[key]}")
            continue
        keys[key] = number
        jobs.append(Job(number, key, model, inputs))
    if problems:
        raise BatchError(problems)
    return jobs


def check_jobs(jobs: list[Job], *, max_upload_bytes: int, allow_extra: bool = False) -> list[Job]:
    """Prepare every job (inputs validated, defaults applied, local files checked) before anything is sent."""
    problems: list[str] = []
    checked: list[Job] = []
    for job in jobs:
        try:
            ready = prepare(job.model, job.input, max_upload_bytes=max_upload_bytes, allow_extra=allow_extra)
        except ValidationError as exc:
            problems += [f"line {job.line}: {problem}" for problem in exc.problems]
            continue
        except UploadError as exc:
            problems.append(f"line {job.line}: {exc}")
            continue
        checked.append(dataclasses.replace(job, input=ready.inputs, files=ready.files))
    if problems:
        raise BatchError(problems)
    return checked


async def send_job(sender: Sender, job: Job, existing: dict[str, Any] | None) -> tuple[Submission, int]:
    """A checked job: skipped if the ledger has it, looked up if its last send was doubtful, else sent; with the
    number of times it was sent again because a lookup proved the previous send created no task."""
    reference = new_reference()
    if existing is not None:
        reference = existing["reference"]
        if existing["state"] in (SENDING, UNKNOWN):
            found = await sender.lookup(existing)
            existing = {**existing, "state": found.outcome, "prediction_id": (found.prediction or {}).get("id")}
        if existing["state"] == SUBMITTED:
            return Submission(reference, job.model, job.input, "skipped", existing["prediction_id"], job_key=job.key), 0
        if existing["state"] == UNKNOWN:
            error = f"the last send ({reference}) may have created a task: not sent again until resolved"
            return Submission(reference, job.model, job.input, "unknown", error=error, job_key=job.key), 0
    resends = 0
    try:
        prepared = await sender.upload(job.model, job.input, job.files)
        while True:
            try:
                return await sender.send(job.model, prepared, job_key=job.key, reference=reference), resends
            except NotCreated:
                # Proven never created: the same submission goes out again, as its next attempt.
                if resends == RESENDS:
                    raise
                resends += 1
    except AmbiguousSubmit as exc:
        return Submission(reference, job.model, job.input, "unknown", error=str(exc), job_key=job.key), resends
    except SubmitterError as exc:
        return Submission(reference, job.model, job.input, "failed", error=str(exc), job_key=job.key), resends


async def run_batch(
    sender: Sender,
    jobs: list[Job],
    *,
    concurrency: int = 16,
    per_model: int | None = None,
    model_limits: Mapping[str, int] | None = None,
    on_result: Callable[[Job, Submission], None] | None = None,
    allow_extra: bool = False,
) -> BatchSummary:
    jobs = check_jobs(jobs, max_upload_bytes=sender.settings.submit.upload_max_bytes, allow_extra=allow_extra)
    keys = [job.key for job in jobs]
    existing = await sender.ledger.submissions_by_job_keys(keys)
    overall = asyncio.Semaphore(concurrency)
    limits = dict(model_limits or {})
    gates = {
        model: asyncio.Semaphore(limits.get(model, per_model or concurrency)) for model in {job.model for job in jobs}
    }
    retried_before, ambiguous_before = Counter(sender.client.retried), Counter(sender.ambiguous)
    results: dict[str, Submission] = {}
    resent = 0

    async def one(job: Job, row: dict[str, Any] | None) -> Submission:
        nonlocal resent
        async with gates[job.model], overall:
            results[job.key], resends = await send_job(sender, job, row)
        resent += resends
        return results[job.key]

    async def first(job: Job) -> None:
        result = await one(job, existing.get(job.key))
        if on_result is not None:
            on_result(job, result)

    await asyncio.gather(*(first(job) for job in jobs))
    await _settle(sender, jobs, results, one)
    summary = BatchSummary(
        total=len(jobs),
        retried=dict(sender.client.retried - retried_before),
        ambiguous=dict(sender.ambiguous - ambiguous_before),
        resent=resent,
    )
    for job in jobs:
        summary.add(results[job.key].outcome, job.line, results[job.key].error)
    return summary


async def _settle(
    sender: Sender,
    jobs: list[Job],
    results: dict[str, Submission],
    one: Callable[[Job, dict[str, Any] | None], Awaitable[Submission]],
) -> None:
    """Look the doubtful jobs up again once their grace period is over (waiting for it if need be)."""

    async def again(job: Job, row: dict[str, Any] | None) -> None:
        result = await one(job, row)
        if result.outcome == "skipped":  # found by the lookup just made
            results[job.key] = dataclasses.replace(result, outcome="resolved")

    for _ in range(SETTLE_PASSES):
        doubtful = [job for job in jobs if results[job.key].outcome == "unknown"]
        if not doubtful:
            return
        rows = await sender.ledger.submissions_by_job_keys([job.key for job in doubtful])
        latest = max((float(row["sent_at"]) for row in rows.values()), default=sender.clock())
        wait = max(latest + sender.settings.submit.unknown_grace_seconds - sender.clock(), 0.0)
        logger.info("batch_settling", doubtful=len(doubtful), wait_seconds=round(wait, 2))
        await sender.sleep(wait)
        await asyncio.gather(*(again(job, rows.get(job.key)) for job in doubtful))
