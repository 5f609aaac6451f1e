"""An in-process stand-in for the provider's API, for unit tests through ``httpx.MockTransport``.

It keeps tasks, answers submit / result / list / secret / upload like the provider, and plays scripted
faults on submit requests: refuse the connection, answer 429/503/500, or lose the answer after creating the
task. Integration tests use the real sandbox process instead.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

BASE = "https://provider.test"
KEY = "sk-test-0123456789abcdef"


def envelope(data: Any, code: int = 200, message: str = "success") -> httpx.Response:
    return httpx.Response(code, json={"code": code, "message": message, "data": data})


class FakeProvider:
    def __init__(self, *, show_inputs: bool = True, clock: Callable[[], str] | None = None) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.submit_faults: list[str] = []  # consumed one per submit request
        self.show_inputs = show_inputs
        self.uploads: dict[str, bytes] = {}
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.latency = 0.0
        self._ids = itertools.count(1)
        self._created = clock or (lambda: "2026-11-21T10:00:00.000Z")

    @property
    def submits(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST" and r.url.path.startswith("/api/v3/bytedance")]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle_async)

    def create(self, model: str, inputs: dict[str, Any], status: str = "created", webhook: str | None = None) -> str:
        task_id = f"task{next(self._ids):04d}"
        self.tasks[task_id] = {
            "id": task_id,
            "model": model,
            "input": inputs,
            "outputs": [],
            "urls": {"get": f"{BASE}/api/v3/predictions/{task_id}/result"},
            "has_nsfw_contents": [],
            "status": status,
            "created_at": self._created(),
            "error": "",
            "webhook": webhook,
        }
        return task_id

    def finish(self, task_id: str, status: str = "completed") -> dict[str, Any]:
        task = self.tasks[task_id]
        task["status"] = status
        if status == "completed":
            task["outputs"] = [f"{BASE}/media/{task_id}/output.mp4"]
            task["has_nsfw_contents"] = [False]
        return self.view(task)

    def view(self, task: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in task.items() if k != "webhook"}
        if not self.show_inputs:
            shown.pop("input")
        return shown

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        model = request.url.path.removeprefix("/api/v3/")
        self.in_flight[model] = self.in_flight.get(model, 0) + 1
        self.max_in_flight[model] = max(self.max_in_flight.get(model, 0), self.in_flight[model])
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            return self.handle(request)
        finally:
            self.in_flight[model] -= 1

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host != urlsplit(BASE).hostname:
            return self._put(request)
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return envelope(None, 401, f"Unauthorized: invalid key {request.headers.get('authorization')}")
        path = request.url.path
        if path == "/api/v3/webhook/secret":
            return envelope({"secret": "whsec_fake"})
        if path == "/api/v3/media/uploads":
            body = json.loads(request.content)
            upload_id = f"up{len(self.uploads) + 1}"
            self.uploads[upload_id] = b""
            return envelope(
                {
                    "upload": {"method": "PUT", "url": f"https://storage.test/{upload_id}", "headers": {"X-Up": "1"}},
                    "download_url": f"{BASE}/media/uploads/{upload_id}/{body['filename']}",
                }
            )
        if path == "/api/v3/predictions":
            return self._list(json.loads(request.content))
        if path.endswith("/result"):
            task_id = path.split("/")[-2]
            if task_id not in self.tasks:
                return envelope(None, 404, f"prediction {task_id} not found")
            return envelope(self.view(self.tasks[task_id]))
        return self._submit(request)

    def _put(self, request: httpx.Request) -> httpx.Response:
        upload_id = request.url.path.strip("/")
        self.uploads[upload_id] = request.content
        return httpx.Response(200)

    def _submit(self, request: httpx.Request) -> httpx.Response:
        fault = self.submit_faults.pop(0) if self.submit_faults else ""
        if fault == "lose-request":
            raise httpx.ReadTimeout("timed out before the provider created anything", request=request)
        if fault == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if fault in {"429", "503"}:
            return envelope(None, int(fault), "slow down" if fault == "429" else "maintenance")
        if fault == "429-retry-after":
            return httpx.Response(429, headers={"retry-after": "7"}, json={"code": 429, "message": "slow down"})
        if fault == "400":
            return envelope(None, 400, "Invalid inputs: duration out of range")
        model = request.url.path.removeprefix("/api/v3/")
        inputs = json.loads(request.content)
        webhook = parse_qs(request.url.query.decode()).get("webhook", [None])[0]
        task_id = self.create(model, inputs, webhook=webhook)
        if fault == "lose-answer":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault == "drop":
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        if fault == "500":
            return envelope(None, 500, "internal error")
        return envelope(self.view(self.tasks[task_id]))

    def _list(self, body: dict[str, Any]) -> httpx.Response:
        items = [self.view(t) for t in reversed(self.tasks.values()) if t["model"] == body.get("model", t["model"])]
        size = body["page_size"]
        page = items[(body["page"] - 1) * size : body["page"] * size]
        return envelope({"page": body["page"], "total": len(items), "items": page})
