"""The running sandbox: its tasks, uploads, delivery log and courier, and each task's life on the clock."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from sandbox import apifaults
from sandbox.config import SandboxConfig
from sandbox.courier import Courier, Event
from sandbox.deliverylog import DeliveryLog, RequestLog
from sandbox.faults import HEADER, FaultPlan, roll
from sandbox.media import Upload, output_name
from sandbox.tasks import Task, TaskBook

logger = structlog.get_logger()


class Sandbox:
    def __init__(
        self,
        config: SandboxConfig,
        *,
        courier: Courier,
        log: DeliveryLog,
        rng: random.Random,
        requests: RequestLog | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.courier = courier
        self.log = log
        self.requests = requests if requests is not None else RequestLog()
        self.rng = rng
        # API faults draw from their own generator, so that they leave the tasks' draws as they were.
        self.api_rng = random.Random(f"api-{config.seed}") if config.seed is not None else random.Random()
        self.clock = clock
        self.fault_rates = dict(config.fault_rates)
        self.api_fault_rates = dict(config.api_fault_rates)
        self.tasks = TaskBook()
        self.uploads: dict[str, Upload] = {}
        self._running: set[asyncio.Task[None]] = set()

    def plan_for(self, requested: FaultPlan | None) -> FaultPlan:
        """The request's own faults when it named any, else a roll of the run's rates."""
        if requested is not None:
            return requested
        return roll(self.rng, self.fault_rates, default_delay=self.config.delay_seconds)

    def api_plan_for(self, header: str) -> apifaults.ApiPlan:
        """A request's API faults: those its header names (``none``: none), else a roll of the run's rates."""
        parts, _task_parts, exempt = apifaults.split(header)
        if parts:
            return self.parse_api_plan(parts, source=f"header {HEADER}")
        if exempt:
            return apifaults.ApiPlan()
        return apifaults.roll_api(
            self.api_rng, self.api_fault_rates, retry_after=self.config.retry_after, hold=self.config.answer_hold
        )

    def parse_api_plan(self, parts: list[str], *, source: str) -> apifaults.ApiPlan:
        return apifaults.parse_api_plan(
            parts, retry_after=self.config.retry_after, hold=self.config.answer_hold, source=source
        )

    def submit(
        self, model: str, inputs: dict[str, Any], *, webhook: str | None, plan: FaultPlan, base_url: str
    ) -> Task:
        task = Task(
            id=uuid.uuid4().hex,
            model=model,
            input=inputs,
            webhook=webhook,
            plan=plan,
            base_url=base_url,
            output_name=output_name(model),
            created_at=self.clock(),
            created_at_digits=self.config.created_at_digits,
        )
        self.tasks.add(task)
        job = asyncio.get_running_loop().create_task(self._live(task), name=f"task-{task.id}")
        self._running.add(job)
        job.add_done_callback(self._finished)
        logger.info("task_submitted", task_id=task.id, model=model, webhook=webhook is not None, faults=plan.names())
        return task

    def _finished(self, job: asyncio.Task[None]) -> None:
        self._running.discard(job)
        if not job.cancelled() and job.exception() is not None:
            logger.error("task_crashed", task=job.get_name(), exc_info=job.exception())

    def _stretch(self, seconds: float) -> float:
        jitter = self.config.jitter
        return seconds * self.rng.uniform(1 - jitter, 1 + jitter)

    async def _live(self, task: Task) -> None:
        await asyncio.sleep(self._stretch(self.config.queue_seconds))
        started = self.clock()
        task.start(started)
        # What a webhook would have said now: the body of the "stale processing" fault, sent much later.
        processing_body = task.webhook_body()
        await asyncio.sleep(self._stretch(self.config.run_seconds))
        finished = self.clock()
        task.finish(finished)
        logger.info(
            "task_finished",
            task_id=task.id,
            model=task.model,
            status=task.status,
            duration_ms=round((finished - task.created_at) * 1000, 2),
        )
        if task.webhook is None:
            return
        final = self._event(task, task.webhook, task.status, task.webhook_body(), finished)
        processing = self._event(task, task.webhook, "processing", processing_body, started)
        await self.courier.deliver(final, task.plan, processing=processing)

    def _event(self, task: Task, url: str, status: str, body: bytes, generated_at: float) -> Event:
        webhook_id = task.id if self.config.webhook_id_mode == "task" else uuid.uuid4().hex
        return Event(task.id, status, webhook_id, int(generated_at), body, url)

    def busy(self) -> int:
        """Tasks still living or deliveries still being tried: zero once the run has settled."""
        return len(self._running)

    async def close(self) -> None:
        for job in list(self._running):
            job.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
