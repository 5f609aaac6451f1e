"""Tasks as the provider keeps them: ``created → processing → completed | failed``, in memory."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from typing import Any

from sandbox.envelope import UnknownResource
from sandbox.faults import FaultPlan

FAILED_ERROR = "Task execution failed: the sandbox was asked to fail this task (fault `fail`)."
TERMINAL = ("completed", "failed")


def iso(timestamp: float) -> str:
    """The provider's ``created_at`` format: ISO 8601, milliseconds, ``Z``."""
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclasses.dataclass(slots=True)
class Task:
    id: str
    model: str
    input: dict[str, Any]
    webhook: str | None
    plan: FaultPlan
    base_url: str
    output_name: str  # "output.mp4" or "output.png"
    created_at: float
    status: str = "created"
    started_at: float | None = None
    finished_at: float | None = None
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    @property
    def error(self) -> str:
        return FAILED_ERROR if self.status == "failed" else ""

    @property
    def outputs(self) -> list[str]:
        if self.status != "completed":
            return []
        return [f"{self.base_url}/media/outputs/{self.id}/{self.output_name}"]

    def prediction(self) -> dict[str, Any]:
        """The prediction object of the API's ``data`` field."""
        inference = 0
        if self.started_at is not None and self.finished_at is not None:
            inference = round((self.finished_at - self.started_at) * 1000)
        data: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "outputs": self.outputs,
            "urls": {"get": f"{self.base_url}/api/v3/predictions/{self.id}/result"},
            "has_nsfw_contents": [self.plan.nsfw] * len(self.outputs),
            "status": self.status,
            "created_at": iso(self.created_at),
            "error": self.error,
            "timings": {"inference": inference},
        }
        if self.status in TERMINAL:
            data["executionTime"] = inference
        return data

    def webhook_body(self) -> bytes:
        """A webhook's body: the prediction object with the inputs as submitted, no envelope."""
        return json.dumps({**self.prediction(), "input": self.input}, separators=(",", ":")).encode()

    def start(self, now: float) -> None:
        self.status = "processing"
        self.started_at = now

    def finish(self, now: float) -> None:
        self.status = "failed" if self.plan.fail else "completed"
        self.finished_at = now
        self.done.set()


class TaskBook:
    """Every task of this run, by id and in submission order."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def add(self, task: Task) -> None:
        self._tasks[task.id] = task

    def get(self, task_id: str) -> Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise UnknownResource(f"prediction {task_id!r} not found")
        return task

    def find(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def newest_first(self) -> list[Task]:
        return sorted(self._tasks.values(), key=lambda t: t.created_at, reverse=True)

    def __len__(self) -> int:
        return len(self._tasks)

    def open_count(self) -> int:
        return sum(1 for task in self._tasks.values() if task.status not in TERMINAL)
