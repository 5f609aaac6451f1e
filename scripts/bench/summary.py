"""The final report: every figure of a run as one Markdown block, ending with a PASS/MISS line per target."""

from __future__ import annotations

import dataclasses
from typing import Any

from bench import environment
from bench.database import FUNCTION, Groups
from bench.phases import Busy, HandlerStart, Memory
from bench.report import Round, at_least, at_most, ratio, ratios_table, results_table
from bench.wrk import WrkResult

MB = 1024 * 1024
BARE_RATIO, NAIVE_RATIO, P99_MS, START_P50_MS, RSS_MB = 0.33, 2.5, 15.0, 20.0, 120.0
# wavehook on PostgreSQL: vs the naive PostgreSQL receiver, vs wavehook on SQLite, its p99 at c=32.
PG_NAIVE_RATIO, PG_SQLITE_RATIO, PG_P99_MS = 2.5, 0.7, 20.0
SATURATED = 0.9  # a core this busy is what bounds the figure
NOISY = 0.10  # other processes taking this much of the server's core make a run unrepresentative


@dataclasses.dataclass
class Results:
    options: dict[str, str]
    environment: dict[str, str]
    fsync_start: tuple[float, float] = (0.0, 0.0)  # p50, p90 ms
    fsync_end: tuple[float, float] = (0.0, 0.0)
    rounds: dict[int, dict[str, list[Round]]] = dataclasses.field(default_factory=dict)
    medians: dict[int, dict[str, Round]] = dataclasses.field(default_factory=dict)
    wrk: dict[int, tuple[Round, WrkResult]] = dataclasses.field(default_factory=dict)  # this generator, then wrk
    naive_db: tuple[int, int] = (0, 0)  # bytes, events
    handler_start: HandlerStart | None = None
    busy: Busy | None = None
    memory: Memory | None = None
    postgres: str | None = None  # the server (d) and (e) ran on, when they ran
    handler_start_pg: HandlerStart | None = None
    memory_pg: Memory | None = None


def _generator(results: Results) -> list[str]:
    busiest = max((r.client_cpu for by in results.rounds.values() for rs in by.values() for r in rs), default=0.0)
    lines = [
        "- **Load generator**: keep-alive HTTP/1.1 over raw asyncio protocols (uvloop), one request in flight per "
        f"connection, pre-signed requests. Its own CPU: at most {busiest:.0%} of its core in any round "
        "(100% would mean it set the pace)."
    ]
    if not results.wrk:
        lines.append("- wrk is not installed (`apt-get install wrk`): the comparison with wrk was skipped.")
    for concurrency, (ours, w) in results.wrk.items():
        lines.append(
            f"- On (a) at {concurrency} connections, back to back: this generator {ours.rate:,.0f}/s (p99 "
            f"{ours.p99_ms:.2f} ms, its CPU {ours.client_cpu:.0%}), wrk with one thread {w.rate:,.0f}/s (p99 "
            f"{w.p99_ms:.2f} ms): {ratio(ours.rate, w.rate):.2f}× wrk."
        )
    return lines


def _handlers(results: Results, idle: Round | None) -> list[str]:
    start, busy = results.handler_start, results.busy
    if start is None or busy is None:
        return ["- **Handlers**: dispatcher not available in this wavehook: handler phases skipped."]
    lines = [
        f"- **Delivery to handler start** at {start.rate:g} deliveries/s (open loop, 4 connections, handler in "
        f"`scripts/bench/handlers.py`): p50 {start.p50_ms:.1f} ms, p99 {start.p99_ms:.1f} ms, max "
        f"{start.max_ms:.1f} ms ({start.started:,} of {start.deliveries:,} started)."
    ]
    b = busy.round
    compared = f"; with no handlers, p99 {idle.p99_ms:.2f} ms at {idle.rate:,.0f}/s" if idle else ""
    lines.append(
        f"- **Answers while all {busy.slots} handler slots are busy** (each run sleeping; every new delivery still "
        f"enqueues a run): {b.rate:,.0f}/s, p50 {b.p50_ms:.2f} ms, p99 {b.p99_ms:.2f} ms, p99.9 "
        f"{b.p999_ms:.2f} ms{compared}."
    )
    return lines


def _postgres(results: Results) -> list[str]:
    if results.postgres is None:
        return ["- **PostgreSQL**: no cluster was started (`--no-postgres`, or none could be): (d) and (e) skipped."]
    lines = [
        f"- **PostgreSQL** for (d) and (e): {results.postgres}, on the same two cores (the servers' pinning "
        "leaves it free to use both); one throwaway cluster started by the script, a fresh database per target."
    ]
    accounts = [
        f"at c={concurrency}, {_groups(groups, m['e'].rate)}"
        for concurrency, m in results.medians.items()
        if "e" in m and (groups := m["e"].groups) is not None
    ]
    if accounts:
        lines.append(
            "- **Groups on PostgreSQL** ((e), as PostgreSQL's statistics count and time its group statement, "
            f"`{FUNCTION}`; medians of the rounds): " + "; ".join(accounts) + "."
        )
    start, m = results.handler_start_pg, results.memory_pg
    if start is not None:
        lines.append(
            f"- **Delivery to handler start across instances on PostgreSQL** (the receiver with "
            f"`WAVEHOOK_DISPATCH_IN_WEB=false` stores, a separate `wavehook worker` is woken by LISTEN/NOTIFY) at "
            f"{start.rate:g}/s: p50 {start.p50_ms:.1f} ms, p99 {start.p99_ms:.1f} ms, max {start.max_ms:.1f} ms "
            f"({start.started:,} of {start.deliveries:,} started)."
        )
    if m is not None:
        lines.append(
            f"- **Memory and size on PostgreSQL**: RSS of `wavehook serve`: {m.rss_start / MB:.0f} MB after "
            f"start-up, {m.rss_after / MB:.0f} MB after {m.deliveries:,} deliveries (peak {m.rss_peak / MB:.0f} "
            f"MB). Ledger: {m.bytes_per_delivery:,.0f} bytes per delivery (tables and indexes, over {m.events:,} "
            "events)."
        )
    return lines


def _memory(results: Results) -> list[str]:
    m = results.memory
    if m is None:
        return []
    naive_bytes, naive_events = results.naive_db
    naive = f"; naive receiver: {naive_bytes / naive_events:,.0f} bytes per delivery" if naive_events else ""
    return [
        f"- **Memory and size**: RSS of `wavehook serve`: {m.rss_start / MB:.0f} MB after start-up, "
        f"{m.rss_after / MB:.0f} MB after {m.deliveries:,} deliveries (peak {m.rss_peak / MB:.0f} MB). Ledger: "
        f"{m.bytes_per_delivery:,.0f} bytes per delivery (database + WAL after a checkpoint, over "
        f"{m.events:,} events, the body kept in full){naive}."
    ]


def _bound(r: Round, concurrency: int, fsync_p50_ms: float) -> str:
    if r.server_cpu >= SATURATED:
        return f"bounded by the server's one core ({r.server_cpu:.0%} CPU)"
    if r.server_cpu + r.others >= SATURATED:
        return (
            f"bounded by CPU on a shared core: the server {r.server_cpu:.0%}, other processes {r.others:.0%} "
            "(a noisy machine)"
        )
    ceiling = concurrency / (fsync_p50_ms / 1000) if fsync_p50_ms else 0.0
    return (
        f"server core {r.server_cpu:.0%} busy, so waiting bounds it: with {concurrency} deliveries in flight and "
        f"an fsync of {fsync_p50_ms:.1f} ms per commit, group commit answers at most ~{ceiling:,.0f}/s"
    )


def _cpu_bound(wavehook: Round, naive: Round) -> str:
    """What a missed ratio over the naive PostgreSQL receiver comes to in CPU: each receiver's CPU per delivery,
    and the rate wavehook's cost would allow were its core kept fully busy (an upper bound, not a measurement)."""
    if not (wavehook.rate and naive.rate and wavehook.server_cpu):
        return "no deliveries answered: no CPU per delivery to compare"
    per_wavehook, per_naive = wavehook.server_cpu / wavehook.rate, naive.server_cpu / naive.rate
    ceiling = 1 / per_wavehook
    return (
        f"CPU per delivery: (d) {per_naive * 1e6:.0f} µs with its core {naive.server_cpu:.0%} busy, (e) "
        f"{per_wavehook * 1e6:.0f} µs with its core {wavehook.server_cpu:.0%} busy; at that cost a fully busy core "
        f"would answer at most ~{ceiling:,.0f}/s, {ratio(ceiling, naive.rate):.2f}× (d)"
    )


def _groups(g: Groups, rate: float) -> str:
    """Where a group's time went on PostgreSQL: one group in flight at a time, so the time from one group to
    the next is its round trip; the server's part of it is the statement and the commit's WAL flush. (``g``
    holds at least one statement: ``GroupStatistics.between`` gives None otherwise.)"""
    interval = g.interval_ms()
    rest = max(0.0, interval - g.statement_ms - g.flush_ms)
    return (
        f"a group every {interval:.2f} ms ({g.per_second:,.0f}/s, {rate / g.per_second:.1f} deliveries "
        f"each): PostgreSQL ran its statement in {g.statement_ms:.2f} ms and flushed its commit's WAL in "
        f"{g.flush_ms:.2f} ms; the other {rest:.2f} ms were spent outside them"
    )


def _targets(results: Results) -> list[str]:
    lines: list[str] = []
    fsync = max(results.fsync_start[0], results.fsync_end[0])
    for concurrency, m in results.medians.items():
        c = m["c"]
        lines.append(at_least(f"c={concurrency} durable ingest vs bare", ratio(c.rate, m["a"].rate), BARE_RATIO))
        lines.append(at_least(f"c={concurrency} durable ingest vs naive", ratio(c.rate, m["b"].rate), NAIVE_RATIO))
        if not lines[-1].startswith("PASS") or not lines[-2].startswith("PASS"):
            lines.append(f"      (c) at c={concurrency}: {_bound(c, concurrency, fsync)}")
    if 32 in results.medians:
        c32 = results.medians[32]["c"]
        lines.append(at_most("p99 answer at concurrency 32", c32.p99_ms, P99_MS, "ms"))
        if c32.p99_ms > P99_MS:
            lines.append(f"      {_bound(c32, 32, fsync)}")
    for concurrency, m in results.medians.items():
        if "e" in m and "d" in m:
            e = m["e"]
            lines.append(
                at_least(f"c={concurrency} wavehook vs naive on PostgreSQL", ratio(e.rate, m["d"].rate), PG_NAIVE_RATIO)
            )
            if not lines[-1].startswith("PASS"):
                lines.append(f"      (e) at c={concurrency}: {_cpu_bound(e, m['d'])}")
                if e.groups is not None:
                    lines.append(f"      (e) at c={concurrency}: {_groups(e.groups, e.rate)}")
            lines.append(
                at_least(
                    f"c={concurrency} wavehook on PostgreSQL vs on SQLite", ratio(e.rate, m["c"].rate), PG_SQLITE_RATIO
                )
            )
            if concurrency == 32:
                lines.append(at_most("p99 answer on PostgreSQL at concurrency 32", e.p99_ms, PG_P99_MS, "ms"))
            if e.errors:
                lines.append(f"MISS  c={concurrency} answers on PostgreSQL that were not 200: {e.errors}")
    if results.handler_start is not None:
        lines.append(at_most("delivery-to-handler-start p50", results.handler_start.p50_ms, START_P50_MS, "ms"))
    if results.handler_start_pg is not None:
        lines.append(
            at_most(
                "delivery-to-handler-start p50 across instances (PostgreSQL)",
                results.handler_start_pg.p50_ms,
                START_P50_MS,
                "ms",
            )
        )
    else:
        lines.append("SKIP  delivery-to-handler-start p50: dispatcher not available")
    if results.memory is not None:
        label = f"RSS after {results.memory.deliveries:,} deliveries"
        if results.memory.deliveries < 100_000:
            label += " (fewer than the 100,000 of the target)"
        lines.append(at_most(label, results.memory.rss_after / MB, RSS_MB, "MB"))
    return lines


def _noise(results: Results) -> list[str]:
    others = max((r.others for by in results.medians.values() for r in by.values()), default=0.0)
    if others < NOISY:
        return []
    return [
        f"**Noisy run**: other processes used up to {others:.0%} of the server's core during the rounds; "
        "the figures below are not representative of this machine.",
        "",
    ]


def markdown(results: Results) -> str:
    env = results.environment
    options = results.options
    idle = results.medians.get(32, {}).get("c")
    parts: list[Any] = [
        f"### Ingest benchmark ({env['date']})",
        "",
        f"{env['machine']}; load average {env['load average at start']} at start, "
        f"{environment.load_average()} at the end. fsync of a 4 KiB append (what each commit under FULL waits "
        f"for): p50 {results.fsync_start[0]:.2f} ms, p90 {results.fsync_start[1]:.2f} ms at start; p50 "
        f"{results.fsync_end[0]:.2f} ms, p90 {results.fsync_end[1]:.2f} ms at the end. {env['software']}. "
        f"Pinning: {env['pinning']}. "
        f"Rounds: {options['rounds']} × {options['duration']} s per target and concurrency after "
        f"{options['warmup']} s of warm-up, targets interleaved; medians of the rounds. `wavehook serve` runs "
        "with its defaults (synchronous=FULL, one canonical log line per delivery) and built-in handlers off.",
        "",
        *_noise(results),
        results_table(results.medians),
        "",
        ratios_table(results.medians),
        "",
        *_generator(results),
        *_handlers(results, idle),
        *_memory(results),
        *_postgres(results),
        "",
        "```",
        *_targets(results),
        "```",
    ]
    return "\n".join(str(part) for part in parts) + "\n"
