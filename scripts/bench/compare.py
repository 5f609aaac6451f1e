"""The comparison: warm up, then rounds of (a), (b), (c) interleaved, at each concurrency."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from bench.deliveries import Signer
from bench.loadgen import drive
from bench.report import Round
from bench.system import SERVER_CORE, Server, core_ticks, cpu_seconds

POOL_CAP = 600_000  # ~0.5 GB of request bytes at most
RATE_FLOOR = 5_000.0  # a warm-up slowed by noise must not leave the next round short of deliveries
RATE_CEILING = 30_000.0  # a guess above any target's rate, for pools sized before a measurement
Log = Callable[[str], None]


def pool_size(rate_hint: float, duration: float, concurrency: int) -> int:
    """Enough fresh deliveries for the round at the rate seen so far, with margin; a round that runs out
    early is measured over the time it ran and flagged."""
    return min(POOL_CAP, max(1_000, math.ceil(rate_hint * duration * 1.5) + 4 * concurrency))


async def run_round(server: Server, signer: Signer, *, concurrency: int, duration: float, rate_hint: float) -> Round:
    """One closed-loop round against ``server``, with the server's CPU and what else ran on its core."""
    requests = signer.pool(pool_size(rate_hint, duration, concurrency))
    statistics = server.group_statistics
    if statistics is not None:
        statistics.round_starts()
    cpu_before = cpu_seconds(server.pid)
    busy_before, total_before = core_ticks(SERVER_CORE)
    result = await drive("127.0.0.1", server.port, requests, concurrency=concurrency, duration=duration)
    busy_after, total_after = core_ticks(SERVER_CORE)
    measured = Round.of(result, cpu_seconds(server.pid) - cpu_before)
    if total_after > total_before:
        core_busy = (busy_after - busy_before) / (total_after - total_before)
        # Whatever kept the server's core busy besides the server itself: other processes (noise).
        measured.others = max(0.0, core_busy - measured.server_cpu)
    if statistics is not None:
        statistics.round_ends(measured, result.elapsed)
    return measured


async def compare(
    targets: Mapping[str, Server],
    signer: Signer,
    *,
    concurrencies: list[int],
    rounds: int,
    duration: float,
    warmup: float,
    log: Log,
) -> dict[int, dict[str, list[Round]]]:
    """Measured rounds per concurrency and target; the targets alternate round by round to share noise."""
    results: dict[int, dict[str, list[Round]]] = {}
    for concurrency in concurrencies:
        hints: dict[str, float] = {}
        for key, server in targets.items():
            warm = await run_round(server, signer, concurrency=concurrency, duration=warmup, rate_hint=RATE_CEILING)
            hints[key] = max(warm.rate, RATE_FLOOR)
            log(f"  warm-up c={concurrency} {key}: {warm.rate:,.0f}/s")
        results[concurrency] = {key: [] for key in targets}
        for number in range(1, rounds + 1):
            for key, server in targets.items():
                measured = await run_round(
                    server, signer, concurrency=concurrency, duration=duration, rate_hint=hints[key]
                )
                hints[key] = max(hints[key], measured.rate)
                results[concurrency][key].append(measured)
                log(
                    f"  round {number} c={concurrency} {key}: {measured.rate:,.0f}/s p99 {measured.p99_ms:.1f} ms"
                    f" server CPU {measured.server_cpu:.0%} (others on its core {measured.others:.0%})"
                    f" generator CPU {measured.client_cpu:.0%}"
                    + (f" errors {measured.errors}" if measured.errors else "")
                    + (" (pool ran out: shorter round)" if measured.exhausted else "")
                )
    return results
