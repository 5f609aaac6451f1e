"""``AsyncSubmitter``: validate, upload, send with a webhook, record in the ledger; batches, reconciling, waiting.

Every submission is written to the ledger *before* its request leaves (state ``sending``), so a lost answer
or a crash leaves a row that a lookup resolves; the submit request itself is never sent twice blindly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Self

import httpx
import structlog

from receiver.correlation import Keys
from receiver.handlers.registry import lazy_route
from receiver.ingest import Ingestor, Router
from receiver.settings import Settings
from receiver.store.ledger import Ledger, open_ledger
from receiver.store.records import FAILED, UNKNOWN
from submitter import batch as batches
from submitter import reconcile as reconciling
from submitter import resolve, uploads
from submitter.callback import new_reference, webhook_url
from submitter.client import KEY_HELP, AsyncProviderClient
from submitter.errors import AmbiguousId, AmbiguousSubmit, NotConfigured, NotCreated, ProviderError, SubmitterError
from submitter.outcomes import BatchSummary, ReconcileCounts, Submission
from submitter.prepared import Prepared, prepare
from submitter.refusals import RefusalWatch, receiver_summary
from submitter.wait import wait_final

logger = structlog.get_logger()
RESOLVE_TRIES = 3


class AsyncSubmitter:
    def __init__(
        self,
        settings: Settings,
        *,
        ingestor: Ingestor,
        correlation_secret: str,
        client: AsyncProviderClient,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.ingestor = ingestor
        self.ledger: Ledger = ingestor.ledger
        self.correlation_secret = correlation_secret
        self.client = client
        self.clock = clock
        self.sleep = sleep
        # local path -> its upload, so a file used by many jobs (even at once) goes up once
        self._uploaded: dict[str, asyncio.Future[str]] = {}
        # Doubtful submits by cause (AmbiguousSubmit.cause).
        self.ambiguous: Counter[str] = Counter()

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        route: Router | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> Self:
        """Open the ledger and one pooled provider client.

        ``route`` defaults to the handlers this process would load, so a final status ingested here enqueues
        the same handler runs a webhook would; they are loaded only when such a status first comes.
        """
        ledger = await open_ledger(settings)
        try:
            configured = [s.reveal() for s in settings.correlation_secrets]
            secret = Keys.of(configured, await ledger.correlation_secret()).signing
        except BaseException:
            await ledger.close()
            raise
        if route is None:
            route = lazy_route(settings)
        ingestor = Ingestor(ledger, terminal_statuses=settings.terminal_statuses, route=route, clock=clock)
        client = AsyncProviderClient.from_settings(settings, transport=transport, sleep=sleep)
        return cls(settings, ingestor=ingestor, correlation_secret=secret, client=client, clock=clock, sleep=sleep)

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.ledger.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    def allows_extra(self, allow_extra: bool | None) -> bool:
        """Whether inputs the catalog does not list are sent: the call's choice, else the setting."""
        return self.settings.submit.allow_extra_inputs if allow_extra is None else allow_extra

    async def submit(
        self,
        model: str,
        inputs: Mapping[str, Any],
        *,
        from_strings: bool = False,
        job_key: str | None = None,
        allow_extra: bool | None = None,
    ) -> Submission:
        """Validate (every problem at once), upload local images, send with a webhook, record in the ledger.

        ``allow_extra``: send inputs the catalog does not list (each named in a warning) instead of refusing
        them; None takes the setting ``WAVEHOOK_ALLOW_EXTRA_INPUTS``.
        """
        # file checks (a stat and the first bytes of each local image) kept off the event loop
        job = await asyncio.to_thread(
            prepare,
            model,
            inputs,
            max_upload_bytes=self.settings.submit.upload_max_bytes,
            from_strings=from_strings,
            allow_extra=self.allows_extra(allow_extra),
        )
        return await self.submit_prepared(job, job_key=job_key)

    async def submit_prepared(self, job: Prepared, *, job_key: str | None = None) -> Submission:
        """Upload the local images of a job ``prepare`` checked, send it with a webhook, record it in the ledger.

        For a caller that checks a job before it opens the submitter (``wavehook submit``): nothing is checked
        twice."""
        if not job.catalogued:
            logger.warning("model_not_catalogued", model=job.model)
        inputs = await self.upload(job.model, job.inputs, job.files)
        result = await self.send(job.model, inputs, job_key=job_key)
        return _replace(result, warnings=job.warnings)

    async def send(
        self, model: str, inputs: dict[str, Any], *, job_key: str | None = None, reference: str | None = None
    ) -> Submission:
        """Send prepared inputs once. A doubtful outcome is looked up; ``AmbiguousSubmit`` if still unknown."""
        if self.client.api_key_missing:
            raise NotConfigured(KEY_HELP)
        reference = reference or new_reference()
        url = webhook_url(self.settings.public_url, reference, self.correlation_secret)
        started = time.perf_counter()
        now = self.clock()
        fresh = await self.ledger.begin_submission(
            reference=reference,
            job_key=job_key,
            model=model,
            input_json=json.dumps(inputs, separators=(",", ":")),
            webhook_url=url,
            now=now,
        )
        if not fresh:
            raise SubmitterError(f"submission {reference} was sent already: it is looked up, never sent again")
        base = Submission(reference, model, inputs, "submitted", webhook_url=url, job_key=job_key)
        try:
            prediction = await self.client.submit(model, inputs, url)
        except AmbiguousSubmit as exc:
            self.ambiguous[exc.cause] += 1
            return await self._doubtful(base, exc, started)
        except SubmitterError as exc:
            await self._record(reference, FAILED, str(exc))
            self._log(base, "failed", started, error=str(exc))
            raise
        tied = await self.ledger.record_submitted(
            reference=reference, prediction=prediction, resolved_by="response", now=self.clock()
        )
        if not tied:
            raise SubmitterError(f"the provider answered with task {prediction['id']}, already tied to another job")
        if prediction.get("status") in self.settings.terminal_statuses:
            await self.ingestor.ingest_result(prediction, reference=reference, source="submit")
        result = _replace(base, prediction_id=prediction["id"], status=prediction.get("status"))
        self._log(result, "submitted", started)
        return result

    async def batch(
        self,
        jobs: Iterable[batches.Job] | Iterable[str],
        *,
        concurrency: int = 16,
        per_model: int | None = None,
        model_limits: Mapping[str, int] | None = None,
        on_result: Callable[[batches.Job, Submission], None] | None = None,
        allow_extra: bool | None = None,
    ) -> BatchSummary:
        """Send many jobs (``Job`` objects, or the lines of a JSON Lines file); see ``submitter.batch``."""
        items = list(jobs)
        parsed = [job for job in items if isinstance(job, batches.Job)]
        if len(parsed) != len(items):
            parsed = batches.read_jobs(str(line) for line in items)
        return await batches.run_batch(
            self,
            parsed,
            concurrency=concurrency,
            per_model=per_model,
            model_limits=model_limits,
            on_result=on_result,
            allow_extra=self.allows_extra(allow_extra),
        )

    async def reconcile(self, *, older_than: float | None = None) -> ReconcileCounts:
        """One reconciliation pass (see ``submitter.reconcile.reconcile_once``)."""
        return await reconciling.reconcile_pass(
            self.ingestor, self.client, self.settings, older_than=older_than, clock=self.clock
        )

    async def wait(
        self,
        prediction_id: str,
        *,
        deadline: float = 3600.0,
        fallback_after: float | None = None,
        on_refusal: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """The ledger row once final; the provider is asked only after ``fallback_after`` without a webhook.

        ``on_refusal`` is told, once each, of deliveries of this job the receiver refused while waiting.
        """
        after = self.settings.submit.wait_fallback_seconds if fallback_after is None else fallback_after
        watch = None
        if on_refusal is not None:
            summary = receiver_summary(self.settings)
            watch = RefusalWatch(self.ledger, prediction_id, since=self.clock() - self._window, summary=summary)
        return await wait_final(
            self.ingestor,
            self.client,
            prediction_id,
            deadline=deadline,
            fallback_after=after,
            sleep=self.sleep,
            refusals=watch,
            notify=on_refusal or (lambda _text: None),
        )

    async def status(self, prediction_id: str) -> dict[str, Any] | None:
        """The ledger's record of ``prediction_id``, or of the one prediction whose id starts with it (the
        shortened ids of ``runs`` and the dashboard, with or without their trailing ``…``).

        ``AmbiguousId`` when several do."""
        found = await self.ledger.get_prediction(prediction_id)
        prefix = prediction_id.rstrip("…").strip()
        if found is not None or not prefix:
            return found
        candidates = await self.ledger.ids_starting(prefix, limit=6)
        if len(candidates) > 1:
            shown = ", ".join(candidates[:5]) + (", …" if len(candidates) > 5 else "")
            raise AmbiguousId(f"{prediction_id} is the start of several prediction ids ({shown}): give more of it")
        return await self.ledger.get_prediction(candidates[0]) if candidates else None

    async def submission(self, reference: str) -> dict[str, Any] | None:
        return await self.ledger.get_submission(reference)

    @property
    def _grace(self) -> float:
        return self.settings.submit.unknown_grace_seconds

    @property
    def _window(self) -> float:
        """How long after sending the provider may still create the task: the request's own timeouts."""
        return self.settings.submit.connect_timeout_seconds + self.settings.submit.read_timeout_seconds

    async def lookup(self, sub: dict[str, Any]) -> resolve.Resolution:
        """Look a doubtful submission up (``submitter.resolve``): tied to its task, proven never created, or
        still unknown."""
        return await resolve.resolve(
            self.ingestor, self.client, sub, now=self.clock(), grace_seconds=self._grace, window_seconds=self._window
        )

    async def upload(self, model: str, inputs: dict[str, Any], files: uploads.Checked | None = None) -> dict[str, Any]:
        """``inputs`` with their local images uploaded once each; ``files``: those ``prepare`` checked."""
        return await uploads.replace_local_files(
            model,
            inputs,
            self.client.upload,
            max_bytes=self.settings.submit.upload_max_bytes,
            cache=self._uploaded,
            checked=files,
        )

    async def _doubtful(self, base: Submission, exc: AmbiguousSubmit, started: float) -> Submission:
        """The request may have created a task: record that, then look it up (a few times, it may be slow)."""
        await self._record(base.reference, UNKNOWN, exc.message)
        sub = await self.submission(base.reference)
        assert sub is not None
        for attempt in range(RESOLVE_TRIES):
            try:
                found = await self.lookup(sub)
            except ProviderError as lookup_error:
                # A lookup that failed proves nothing either way: the outcome stays unknown.
                logger.warning("submission_lookup_failed", reference=base.reference, error=str(lookup_error))
                found = resolve.Resolution("unknown")
            if found.outcome == "submitted" and found.prediction is not None:
                result = _replace(
                    base,
                    outcome="resolved",
                    prediction_id=found.prediction["id"],
                    status=found.prediction.get("status"),
                )
                self._log(result, "resolved", started)
                return result
            if found.outcome == "failed":
                self._log(base, "failed", started, error=exc.message)
                raise NotCreated(f"{exc.message}; a lookup found no task, so none was created") from exc
            if attempt + 1 < RESOLVE_TRIES:
                await self.sleep(self.settings.submit.backoff_seconds * 2**attempt)
        self._log(base, "unknown", started, error=exc.message)
        raise AmbiguousSubmit(
            f"{exc.message}; recorded as {base.reference}: `wavehook reconcile` finds the task or confirms there is "
            "none, and the job is not sent again meanwhile",
            reference=base.reference,
        ) from exc

    async def _record(self, reference: str, state: str, error: str) -> None:
        now = self.clock()
        await self.ledger.record_submission_outcome(reference=reference, state=state, error=error, now=now)

    def _log(self, result: Submission, outcome: str, started: float, error: str | None = None) -> None:
        logger.info(
            "submission_sent",
            reference=result.reference,
            model=result.model,
            prediction_id=result.prediction_id,
            job_key=result.job_key,
            outcome=outcome,
            error=error,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )


def _replace(submission: Submission, **changes: Any) -> Submission:
    return dataclasses.replace(submission, **changes)
