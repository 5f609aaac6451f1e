"""Fixtures of the sandbox's unit tests: in-process sandboxes on a millisecond clock, a scripted receiver."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from receiver.settings import Secret
from sandbox import SandboxConfig, create_app
from tests.conftest import SECRET
from tests.support import wait_for

HOOK = "http://receiver.test/webhooks/wavespeed"
T2V = "bytedance/seedance-v1-lite-t2v-480p"
AUTH = {"Authorization": "Bearer test-key"}

# A millisecond clock: tasks end in tens of milliseconds, retries come after a few.
FAST = {
    "queue_seconds": 0.01,
    "run_seconds": 0.02,
    "jitter": 0.0,
    "retry_initial": 0.01,
    "retry_max": 0.04,
    "retry_window": 5.0,
    "delivery_timeout": 1.0,
    "seed": 7,
}


@dataclasses.dataclass
class Hit:
    headers: dict[str, str]
    body: bytes
    url: str


class ScriptedReceiver:
    """A webhook endpoint behind httpx.MockTransport: answers from a script (status codes or exceptions to
    raise), then 200; keeps every request that reached it."""

    def __init__(self, script: list[int | Exception] | None = None) -> None:
        self.script = list(script or [])
        self.hits: list[Hit] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            step = self.script.pop(0) if self.script else 200
            if isinstance(step, Exception):
                raise step
            self.hits.append(Hit(dict(request.headers), request.content, str(request.url)))
        return httpx.Response(step, json={"received": step == 200})


def settle(client: TestClient, *, timeout: float = 10.0) -> dict[str, Any]:
    """Wait until every task has ended and every delivery is settled; the sandbox's status then."""

    def idle() -> dict[str, Any] | None:
        status: dict[str, Any] = client.get("/_sandbox/status").json()
        return status if status["busy"] == 0 and status["open_tasks"] == 0 else None

    result: dict[str, Any] = wait_for(idle, timeout=timeout, interval=0.01, what="the sandbox to settle")
    return result


def deliveries(client: TestClient, task_id: str | None = None) -> list[dict[str, Any]]:
    params = {"task_id": task_id} if task_id else {}
    records: list[dict[str, Any]] = client.get("/_sandbox/deliveries", params=params).json()["deliveries"]
    return records


@pytest.fixture
def sandbox_app() -> Iterator[Callable[..., TestClient]]:
    """In-process sandboxes on the millisecond clock, webhooks going to a ScriptedReceiver when one is given."""
    clients: list[TestClient] = []

    def make(receiver: ScriptedReceiver | None = None, **overrides: Any) -> TestClient:
        config = SandboxConfig(secret=Secret(SECRET), **{**FAST, **overrides})
        transport = httpx.MockTransport(receiver) if receiver is not None else None
        client = TestClient(create_app(config, transport=transport), headers=AUTH)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        client.__exit__(None, None, None)


def submit(
    client: TestClient,
    model: str = T2V,
    inputs: dict[str, Any] | None = None,
    *,
    faults: str | None = None,
    webhook: str | None = HOOK,
) -> dict[str, Any]:
    """Submit a task and return its prediction; fails the test on an error answer."""
    params = {"webhook": webhook} if webhook else {}
    headers = {"X-Sandbox-Faults": faults} if faults is not None else {}
    response = client.post(f"/api/v3/{model}", json=inputs or {"prompt": "a fox"}, params=params, headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data
