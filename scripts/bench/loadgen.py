"""A load generator: keep-alive HTTP/1.1 connections over raw asyncio protocols, one request in flight each.

Requests are pre-built bytes; a response is parsed only as far as its status line and Content-Length. Each
connection sends its next request as soon as the previous answer is complete (closed loop), or, with
``rate``, on a fixed schedule (open loop, for latency at a given load). The generator measures its own CPU
time so the report can show that it was not the bottleneck.
"""

from __future__ import annotations

import asyncio
import dataclasses
import resource
import time
from collections import Counter
from collections.abc import Sequence
from typing import cast


@dataclasses.dataclass
class RoundResult:
    completed: int
    elapsed: float  # seconds from the first request to the last answer
    latencies_ns: list[int]
    statuses: Counter[int]
    client_cpu: float  # CPU seconds the generator used (user + system)
    exhausted: bool  # the pool of requests ran out before the duration did
    sent_at: dict[int, float]  # request index -> wall-clock send time, when asked for

    @property
    def rate(self) -> float:
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)


class _Shared:
    def __init__(self, requests: Sequence[bytes], deadline: float, record_sends: bool) -> None:
        self.requests = requests
        self.next_index = 0
        self.deadline = deadline
        self.latencies: list[int] = []
        self.statuses: Counter[int] = Counter()
        self.last_answer = 0
        self.exhausted = False
        self.record_sends = record_sends
        self.sent_at: dict[int, float] = {}

    def take(self) -> int | None:
        if time.perf_counter() >= self.deadline:
            return None
        if self.next_index >= len(self.requests):
            self.exhausted = True
            return None
        index = self.next_index
        self.next_index += 1
        return index


class _Connection(asyncio.Protocol):
    def __init__(self, shared: _Shared, interval: float | None, loop: asyncio.AbstractEventLoop) -> None:
        self.shared = shared
        self.interval = interval
        self.loop = loop
        self.buffer = b""
        self.sent_ns = 0
        self.next_send = 0.0
        self.done: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def start(self, offset: float) -> None:
        if self.interval is None:
            self.send()
        else:
            self.next_send = time.perf_counter() + offset
            self.loop.call_later(offset, self.send)

    def send(self) -> None:
        index = self.shared.take()
        if index is None:
            if not self.done.done():
                self.done.set_result(None)
            return
        assert self.transport is not None
        if self.shared.record_sends:
            self.shared.sent_at[index] = time.time()
        self.sent_ns = time.perf_counter_ns()
        self.transport.write(self.shared.requests[index])

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            marker = head.find(b"\r\ncontent-length:")
            if marker < 0:
                self._fail(RuntimeError(f"answer without Content-Length: {head[:200]!r}"))
                return
            line_end = head.find(b"\r\n", marker + 2)
            length = int(head[marker + 17 : line_end if line_end >= 0 else len(head)])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            status = int(self.buffer[9:12])
            self.buffer = self.buffer[total:]
            self._answered(status)

    def _answered(self, status: int) -> None:
        now = time.perf_counter_ns()
        shared = self.shared
        shared.latencies.append(now - self.sent_ns)
        shared.statuses[status] += 1
        shared.last_answer = now
        if self.interval is None:
            self.send()
            return
        self.next_send += self.interval
        delay = self.next_send - time.perf_counter()
        if delay <= 0:
            self.send()  # behind schedule: send at once (the latency then includes the server's backlog)
        else:
            self.loop.call_later(delay, self.send)

    def _fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("the server closed a keep-alive connection"))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def drive(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    duration: float,
    rate: float | None = None,
    record_sends: bool = False,
) -> RoundResult:
    """Send ``requests`` in order over ``concurrency`` connections until ``duration`` ends or they run out."""
    loop = asyncio.get_running_loop()
    interval = concurrency / rate if rate else None
    shared = _Shared(requests, float("inf"), record_sends)
    connections: list[_Connection] = []
    for _ in range(concurrency):
        # The connections are opened before the clock starts: connection set-up is not what is measured.
        _transport, protocol = await loop.create_connection(lambda: _Connection(shared, interval, loop), host, port)
        connections.append(protocol)
    cpu_before = _cpu_seconds()
    shared.deadline = time.perf_counter() + duration
    started_ns = time.perf_counter_ns()
    for i, connection in enumerate(connections):
        connection.start(i * interval / concurrency if interval else 0.0)
    try:
        await asyncio.gather(*(connection.done for connection in connections))
    finally:
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()
    cpu = _cpu_seconds() - cpu_before
    elapsed = (shared.last_answer - started_ns) / 1e9 if shared.last_answer else 0.0
    return RoundResult(
        completed=len(shared.latencies),
        elapsed=elapsed,
        latencies_ns=shared.latencies,
        statuses=shared.statuses,
        client_cpu=cpu,
        exhausted=shared.exhausted,
        sent_at=shared.sent_at,
    )
