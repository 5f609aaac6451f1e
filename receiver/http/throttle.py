"""Throttling of guesses: a client that keeps failing to authenticate is refused for a while.

Counted per client address in each process (with ``serve --workers N`` each worker counts its own); a
client past ``max_failures`` failures within ``window_seconds`` gets 429 with ``Retry-After`` until the oldest of
them leaves the window, whatever it sends. Memory is bounded: the least recently seen clients are forgotten.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable

MAX_FAILURES = 5
WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000


class Throttle:
    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self.max_clients = max_clients
        self.clock = clock
        self._failures: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()

    def retry_after(self, client: str | None) -> int | None:
        """Seconds until ``client`` may try again, or ``None`` when it may try now."""
        failures = self._failures.get(client or "")
        if failures is None:
            return None
        now = self.clock()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, client: str | None) -> None:
        key = client or ""
        failures = self._failures.pop(key, None) or collections.deque(maxlen=self.max_failures)
        failures.append(self.clock())
        self._failures[key] = failures
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def succeeded(self, client: str | None) -> None:
        self._failures.pop(client or "", None)
