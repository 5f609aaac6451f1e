"""Continuous signed load that behaves like the provider: each delivery is retried until it is answered 200.

Threads take predictions one after another and deliver ``processing`` then the final status, so a crash can
land between any two steps. Every answer is counted per webhook-id, so a test can hold the ledger against
what was acknowledged.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from typing import Any

import httpx

from tests.conftest import SECRET
from tests.support import prediction_body, signed_headers, wait_for

MODEL = "bytedance/seedance-v1-lite-t2v-480p"
PATH = "/webhooks/wavespeed"


def final_status(index: int) -> str:
    return "failed" if index % 4 == 3 else "completed"


class SignedLoad:
    def __init__(self, url: str, *, threads: int = 8, max_predictions: int = 5000, deadline: float = 90.0) -> None:
        self.url = url
        self.acked: collections.Counter[str] = collections.Counter()  # webhook-id -> 200s received
        self.errors = 0  # attempts cut off or refused (the server was down)
        self.other: list[tuple[str, int]] = []  # any answer but 200: none is expected
        self.finals: dict[str, str] = {}  # prediction id -> the final status acknowledged
        self._next = itertools.count()
        self._max = max_predictions
        self._deadline = time.monotonic() + deadline
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._abandon = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"load-{n}", daemon=True) for n in range(threads)]

    def start(self) -> SignedLoad:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Let each thread finish the prediction it is on (every delivery answered 200), then stop."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        assert not any(thread.is_alive() for thread in self._threads), "a load thread never got its 200"

    def abandon(self) -> None:
        """Stop at once, whatever is unanswered: the test has failed already and no server may come back."""
        self._abandon.set()
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def acknowledged(self) -> int:
        with self._lock:
            return sum(self.acked.values())

    def wait_more(self, count: int, timeout: float = 30.0) -> int:
        """Until ``count`` more deliveries have been acknowledged than now; how many were, in the end."""
        before = self.acknowledged()
        wait_for(lambda: self.acknowledged() - before >= count, timeout=timeout, what=f"{count} acknowledgements")
        return self.acknowledged() - before

    def _work(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                index = next(self._next)
                if index >= self._max:
                    return
                pid = f"crash-{index:05d}"
                self._deliver(client, pid, "processing", f"{pid}-processing")
                final = final_status(index)
                self._deliver(client, pid, final, f"{pid}-final")
                with self._lock:
                    self.finals[pid] = final

    def _deliver(self, client: httpx.Client, pid: str, status: str, webhook_id: str) -> None:
        body = prediction_body(pid, status, model=MODEL)
        # The provider keeps the event's timestamp across retries: the same signed bytes every time.
        headers = signed_headers(SECRET, body, webhook_id=webhook_id)
        while time.monotonic() < self._deadline + 30 and not self._abandon.is_set():
            result: Any
            try:
                result = client.post(PATH, content=body, headers=headers).status_code
            except httpx.HTTPError:
                result = None
            with self._lock:
                if result == 200:
                    self.acked[webhook_id] += 1
                    return
                if result is None:
                    self.errors += 1
                else:
                    self.other.append((webhook_id, result))
            time.sleep(0.02)
        if not self._abandon.is_set():
            raise AssertionError(f"{webhook_id} was never answered 200")
