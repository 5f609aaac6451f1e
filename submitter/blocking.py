"""``Submitter``: the library API for code that is not async. It runs an ``AsyncSubmitter`` on a private event
loop in a background thread, so it also works where a loop is already running (a notebook, a web handler)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, Self, TypeVar

import httpx

from receiver.ingest import Router
from receiver.settings import Settings
from submitter.batch import Job
from submitter.outcomes import BatchSummary, ReconcileCounts, Submission
from submitter.service import AsyncSubmitter

T = TypeVar("T")


class Submitter:
    """Blocking twin of ``AsyncSubmitter``: the same methods, the same results. Close it (or use ``with``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        route: Router | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="wavehook-submitter", daemon=True)
        self._thread.start()
        try:
            self._async = self._run(AsyncSubmitter.open(settings, transport=transport, route=route, clock=clock))
        except BaseException:
            self._stop()
            raise

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def submit(
        self,
        model: str,
        inputs: Mapping[str, Any],
        *,
        from_strings: bool = False,
        job_key: str | None = None,
        allow_extra: bool | None = None,
    ) -> Submission:
        return self._run(
            self._async.submit(model, inputs, from_strings=from_strings, job_key=job_key, allow_extra=allow_extra)
        )

    def batch(
        self,
        jobs: Iterable[Job] | Iterable[str],
        *,
        concurrency: int = 16,
        per_model: int | None = None,
        model_limits: Mapping[str, int] | None = None,
        on_result: Callable[[Job, Submission], None] | None = None,
        allow_extra: bool | None = None,
    ) -> BatchSummary:
        return self._run(
            self._async.batch(
                jobs,
                concurrency=concurrency,
                per_model=per_model,
                model_limits=model_limits,
                on_result=on_result,
                allow_extra=allow_extra,
            )
        )

    def reconcile(self, *, older_than: float | None = None) -> ReconcileCounts:
        return self._run(self._async.reconcile(older_than=older_than))

    def wait(
        self, prediction_id: str, *, deadline: float = 3600.0, fallback_after: float | None = None
    ) -> dict[str, Any]:
        return self._run(self._async.wait(prediction_id, deadline=deadline, fallback_after=fallback_after))

    def status(self, prediction_id: str) -> dict[str, Any] | None:
        return self._run(self._async.status(prediction_id))

    def submission(self, reference: str) -> dict[str, Any] | None:
        return self._run(self._async.submission(reference))

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._async.aclose())
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
