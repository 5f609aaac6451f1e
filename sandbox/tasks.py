"""Tasks as the provider keeps them: ``created → processing → completed | failed``, in memory."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from typing import Any

from sandbox.envelope import UnknownResource
from sandbox.faults import FaultPlan

ERRORS = {
    "failed": "Task execution failed: the sandbox was asked to fail this task (fault `fail`).",
    "cancelled": "Task cancelled: the sandbox was asked to cancel this task (fault `cancel`).",
    "timeout": "Task timed out: the sandbox was asked to time this task out (fault `timeout`).",
}
TERMINAL = ("completed", "failed", "cancelled", "timeout")


def _split(timestamp: float, digits: int) -> tuple[int, str]:
    """Whole seconds and the first ``digits`` decimals, truncated, read from the float's shortest repr so that
    no binary rounding creeps in."""
    whole, _, decimals = f"{timestamp!r}".partition(".")
    return int(whole), (decimals + "0" * digits)[:digits]


def iso(timestamp: float, digits: int = 3) -> str:
    """The provider's ``created_at`` format: ISO 8601 in UTC, ``digits`` fractional digits (3 in its docs), ``Z``."""
    whole, decimals = _split(timestamp, digits)
    text = dt.datetime.fromtimestamp(whole, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{decimals}Z" if digits else f"{text}Z"


def shown(timestamp: float, digits: int) -> float:
    """The instant ``iso(timestamp, digits)`` shows, so that list filters agree with what clients read."""
    whole, decimals = _split(timestamp, digits)
    return float(f"{whole}.{decimals or 0}")


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
    created_at_digits: int = 3
    status: str = "created"
    started_at: float | None = None
    finished_at: float | None = None
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    @property
    def error(self) -> str:
        return ERRORS.get(self.status, "")

    @property
    def created(self) -> float:
        """``created_at`` as clients see it (truncated to the digits shown)."""
        return shown(self.created_at, self.created_at_digits)

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
            "created_at": iso(self.created_at, self.created_at_digits),
            "error": self.error,
            "timings": {"inference": inference},
        }
        if self.status in TERMINAL:
            data["executionTime"] = inference
        return data

    def listed(self) -> dict[str, Any]:
        """The task as the list endpoint shows it: the prediction with the inputs as submitted."""
        return {**self.prediction(), "input": self.input}

    def webhook_body(self) -> bytes:
        """A webhook's body: the prediction object with the inputs as submitted, no envelope."""
        return json.dumps(self.listed(), separators=(",", ":")).encode()

    def start(self, now: float) -> None:
        self.status = "processing"
        self.started_at = now

    def finish(self, now: float) -> None:
        self.status = self.plan.outcome()
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

    def count_by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self._tasks.values():
            counts[task.status] = counts.get(task.status, 0) + 1
        return counts

    def newest_first(self) -> list[Task]:
        return sorted(self._tasks.values(), key=lambda t: t.created_at, reverse=True)

    def __len__(self) -> int:
        return len(self._tasks)

    def open_count(self) -> int:
        return sum(1 for task in self._tasks.values() if task.status not in TERMINAL)
