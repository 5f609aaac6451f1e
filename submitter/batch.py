"""Batches: a JSON Lines file of jobs, every job checked before any is sent, sent with bounded concurrency
(overall and per model), and resumable: a job already in the ledger is not sent again.

A line is ``{"model": "<model id>", "input": {...}, "key": "<optional>"}``. A job's key is its ``key``, or
else a digest of its model and input, numbered when the same job appears more than once in the file.

A job whose submit stayed doubtful (its answer lost, or a 5xx) is looked up again once the grace period since
it was sent has passed, before the run ends: found, it counts as resolved; proven never created, it is sent
again. The summary counts the requests sent again by reason, the doubtful submits by cause, and the resends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from submitter import uploads
from submitter.errors import BatchError, UploadError, ValidationError
from submitter.outcomes import BatchSummary, Submission
from submitter.validation import validate

if TYPE_CHECKING:
    from submitter.service import AsyncSubmitter

logger = structlog.get_logger()
SETTLE_PASSES = 3


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    line: int
    key: str
    model: str
    input: dict[str, Any]


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
    """Validate every job and check its local files before anything is sent; defaults applied."""
    problems: list[str] = []
    checked: list[Job] = []
    for job in jobs:
        try:
            inputs = validate(job.model, job.input, allow_local_paths=True, allow_extra=allow_extra)
            for field, path in uploads.local_paths(job.model, inputs):
                uploads.check(field, path, max_upload_bytes)
        except ValidationError as exc:
            problems += [f"line {job.line}: {problem}" for problem in exc.problems]
            continue
        except UploadError as exc:
            problems.append(f"line {job.line}: {exc}")
            continue
        checked.append(dataclasses.replace(job, input=inputs))
    if problems:
        raise BatchError(problems)
    return checked


async def run_batch(
    service: AsyncSubmitter,
    jobs: list[Job],
    *,
    concurrency: int = 16,
    per_model: int | None = None,
    model_limits: Mapping[str, int] | None = None,
    on_result: Callable[[Job, Submission], None] | None = None,
    allow_extra: bool = False,
) -> BatchSummary:
    jobs = check_jobs(jobs, max_upload_bytes=service.settings.submit.upload_max_bytes, allow_extra=allow_extra)
    keys = [job.key for job in jobs]
    existing = await service.ledger.submissions_by_job_keys(keys)
    overall = asyncio.Semaphore(concurrency)
    limits = dict(model_limits or {})
    gates = {
        model: asyncio.Semaphore(limits.get(model, per_model or concurrency)) for model in {job.model for job in jobs}
    }
    retried_before, ambiguous_before, resent_before = (
        Counter(service.client.retried),
        Counter(service.ambiguous),
        service.resent,
    )
    results: dict[str, Submission] = {}

    async def one(job: Job, row: dict[str, Any] | None) -> Submission:
        async with gates[job.model], overall:
            results[job.key] = await service.send_job(job, row)
        return results[job.key]

    async def first(job: Job) -> None:
        result = await one(job, existing.get(job.key))
        if on_result is not None:
            on_result(job, result)

    await asyncio.gather(*(first(job) for job in jobs))
    await _settle(service, jobs, results, one)
    summary = BatchSummary(
        total=len(jobs),
        retried=dict(service.client.retried - retried_before),
        ambiguous=dict(service.ambiguous - ambiguous_before),
        resent=service.resent - resent_before,
    )
    for job in jobs:
        summary.add(results[job.key].outcome, job.line, results[job.key].error)
    return summary


async def _settle(
    service: AsyncSubmitter,
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
        rows = await service.ledger.submissions_by_job_keys([job.key for job in doubtful])
        latest = max((float(row["sent_at"]) for row in rows.values()), default=service.clock())
        wait = max(latest + service.settings.submit.unknown_grace_seconds - service.clock(), 0.0)
        logger.info("batch_settling", doubtful=len(doubtful), wait_seconds=round(wait, 2))
        await service.sleep(wait)
        await asyncio.gather(*(again(job, rows.get(job.key)) for job in doubtful))
