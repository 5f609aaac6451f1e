"""The phases beyond throughput: delivery-to-handler-start, acks while every handler is busy, memory and size."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from bench.deliveries import SLOW_MODEL, Signer
from bench.loadgen import drive
from bench.report import Round, percentile
from bench.system import cpu_seconds, rss_bytes
from bench.targets import Workdir


def dispatcher_available() -> bool:
    """True when this wavehook has handlers and an in-process dispatcher (``receiver.handlers.on``)."""
    try:
        return all(importlib.util.find_spec(name) for name in ("receiver.handlers", "receiver.dispatch"))
    except ModuleNotFoundError:
        return False


def _starts(log: Path) -> dict[str, float]:
    if not log.exists():
        return {}
    found: dict[str, float] = {}
    for line in log.read_text().splitlines():
        prediction_id, _, started = line.partition(" ")
        found.setdefault(prediction_id, float(started))
    return found


async def _until(predicate: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


@dataclasses.dataclass
class HandlerStart:
    rate: float  # deliveries per second offered
    deliveries: int
    started: int  # runs that started before the wait ended
    p50_ms: float
    p99_ms: float
    max_ms: float


async def handler_start(
    work: Workdir, signer: Signer, *, rate: float, duration: float, postgres_url: str | None = None
) -> HandlerStart:
    """Deliveries at a steady ``rate``; each one's handler records its start: time from send to start.

    With ``postgres_url``: the receiver only receives (``WAVEHOOK_DISPATCH_IN_WEB=false``) and a separate
    ``wavehook worker`` runs the handlers, so each run crosses from one instance to another (LISTEN/NOTIFY).
    """
    name = "wavehook-dispatch-pg" if postgres_url else "wavehook-dispatch"
    log = work.path / f"{name}-starts.log"
    env = {"WAVEHOOK_HANDLERS": "bench.handlers", "BENCH_HANDLER_LOG": str(log)}
    with contextlib.ExitStack() as stack:
        if postgres_url:
            env |= {"WAVEHOOK_DB": postgres_url, "WAVEHOOK_DISPATCH_IN_WEB": "false"}
            stack.enter_context(work.worker(f"{name}-worker", env))
        server = stack.enter_context(work.wavehook(name, env))
        pool = signer.pool_with_ids(int(rate * duration) + 10)
        ids = [prediction_id for prediction_id, _request in pool]
        result = await drive(
            "127.0.0.1",
            server.port,
            [request for _id, request in pool],
            concurrency=4,
            duration=duration,
            rate=rate,
            record_sends=True,
        )
        sent = {ids[index]: at for index, at in result.sent_at.items()}
        await _until(lambda: set(sent) <= set(_starts(log)), within=30)
    starts = _starts(log)
    delays = sorted((starts[pid] - at) * 1000 for pid, at in sent.items() if pid in starts)
    return HandlerStart(
        rate=rate,
        deliveries=len(sent),
        started=len(delays),
        p50_ms=percentile(delays, 0.5),
        p99_ms=percentile(delays, 0.99),
        max_ms=delays[-1] if delays else 0.0,
    )


@dataclasses.dataclass
class Busy:
    slots: int  # dispatcher slots, every one held by a sleeping handler during the round
    round: Round


async def busy_handlers(work: Workdir, signer: Signer, *, slots: int, concurrency: int, duration: float) -> Busy:
    """Fill every dispatcher slot with a handler that sleeps, then measure answers at ``concurrency``."""
    log = work.path / "busy-starts.log"
    env = {
        "WAVEHOOK_HANDLERS": "bench.handlers",
        "BENCH_HANDLER_LOG": str(log),
        "BENCH_HANDLER_SLEEP": str(duration * 4 + 30),
        "WAVEHOOK_DISPATCH_CONCURRENCY": str(slots),
    }
    with work.wavehook("wavehook-busy", env) as server:
        slow = signer.pool(slots * 2, model=SLOW_MODEL)
        await drive("127.0.0.1", server.port, slow, concurrency=1, duration=60)
        if not await _until(lambda: len(_starts(log)) >= slots, within=30):
            raise RuntimeError(f"only {len(_starts(log))} of {slots} slow handlers started; see {server.log}")
        requests = signer.pool(max(1_000, int(duration * 20_000)))
        cpu_before = cpu_seconds(server.pid)
        result = await drive("127.0.0.1", server.port, requests, concurrency=concurrency, duration=duration)
        measured = Round.of(result, cpu_seconds(server.pid) - cpu_before)
        if len(_starts(log)) > slots:
            raise RuntimeError("a handler started during the busy round: the slots were not all busy")
    return Busy(slots=slots, round=measured)


@dataclasses.dataclass
class Memory:
    deliveries: int
    rss_start: int  # bytes, after start-up and a short warm-up
    rss_after: int
    rss_peak: int
    db_bytes: int  # database file and WAL after a checkpoint
    events: int

    @property
    def bytes_per_delivery(self) -> float:
        return self.db_bytes / self.events if self.events else 0.0


def _peak(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def database_size(path: Path) -> tuple[int, int]:
    """(file + WAL bytes after a checkpoint, events stored), read beside the running server."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (events,) = conn.execute("SELECT count(*) FROM events").fetchone()
    conn.close()
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0), int(events)


def postgres_size(url: str) -> tuple[int, int]:
    """(bytes of every table and index of the ledger, events stored) of a PostgreSQL ledger."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("CHECKPOINT")
        row = conn.execute(
            "SELECT (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'), "
            "(SELECT count(*) FROM events)"
        ).fetchone()
    assert row is not None
    return int(row[0] or 0), int(row[1])


async def memory(
    work: Workdir, signer: Signer, *, deliveries: int, concurrency: int, postgres_url: str | None = None
) -> Memory:
    """RSS of a fresh ``wavehook serve`` before and after ``deliveries`` deliveries; ledger bytes per delivery."""
    chunk = 20_000  # signed just before sending: timestamps stay well inside the 300 s tolerance
    name = "wavehook-memory-pg" if postgres_url else "wavehook-memory"
    extra = {"WAVEHOOK_DB": postgres_url} if postgres_url else None
    with work.wavehook(name, extra) as server:
        await drive("127.0.0.1", server.port, signer.pool(500), concurrency=concurrency, duration=60)
        rss_start = rss_bytes(server.pid)
        sent = 500
        while sent < deliveries:
            batch = signer.pool(min(chunk, deliveries - sent))
            result = await drive("127.0.0.1", server.port, batch, concurrency=concurrency, duration=3600)
            if result.errors:
                raise RuntimeError(f"{result.errors} deliveries refused during the memory phase; see {server.log}")
            sent += result.completed
        rss_after = rss_bytes(server.pid)
        db_bytes, events = postgres_size(postgres_url) if postgres_url else database_size(work.db(name))
        peak = _peak(server.pid)
    return Memory(sent, rss_start, rss_after, peak, db_bytes, events)
