"""Numbers to text: per-round statistics, medians over rounds, the results table and the target lines."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence

from bench.database import Groups, median_groups
from bench.loadgen import RoundResult

TARGETS = {
    "a": "(a) bare Starlette",
    "b": "(b) naive sqlite-utils",
    "c": "(c) wavehook serve",
    "d": "(d) naive PostgreSQL",
    "e": "(e) wavehook serve on PostgreSQL",
}


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = math.ceil(fraction * len(sorted_values))  # 1-based
    return sorted_values[min(len(sorted_values), max(1, rank)) - 1]


@dataclasses.dataclass
class Round:
    """One measured round of one target at one concurrency."""

    rate: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    server_cpu: float  # cores: CPU seconds of the server per second of the round
    client_cpu: float  # cores used by the load generator
    completed: int
    errors: int
    exhausted: bool
    others: float = 0.0  # share of the server's core used by other processes during the round
    groups: Groups | None = None  # wavehook on PostgreSQL: its group statements, as the server counted them

    @classmethod
    def of(cls, result: RoundResult, server_cpu_seconds: float) -> Round:
        latencies = sorted(result.latencies_ns)
        elapsed = result.elapsed or 1e-9
        return cls(
            rate=result.rate,
            p50_ms=percentile(latencies, 0.50) / 1e6,
            p99_ms=percentile(latencies, 0.99) / 1e6,
            p999_ms=percentile(latencies, 0.999) / 1e6,
            server_cpu=server_cpu_seconds / elapsed,
            client_cpu=result.client_cpu / elapsed,
            completed=result.completed,
            errors=result.errors,
            exhausted=result.exhausted,
        )


def median_round(rounds: Sequence[Round]) -> Round:
    """Each figure is the median of that figure over the rounds (counts are summed)."""
    return Round(
        rate=statistics.median(r.rate for r in rounds),
        p50_ms=statistics.median(r.p50_ms for r in rounds),
        p99_ms=statistics.median(r.p99_ms for r in rounds),
        p999_ms=statistics.median(r.p999_ms for r in rounds),
        server_cpu=statistics.median(r.server_cpu for r in rounds),
        client_cpu=statistics.median(r.client_cpu for r in rounds),
        completed=sum(r.completed for r in rounds),
        errors=sum(r.errors for r in rounds),
        exhausted=any(r.exhausted for r in rounds),
        others=statistics.median(r.others for r in rounds),
        groups=median_groups([r.groups for r in rounds]),
    )


def results_table(by_concurrency: dict[int, dict[str, Round]]) -> str:
    lines = [
        "| concurrency | target | deliveries/s | p50 ms | p99 ms | p99.9 ms | server CPU | others on its core "
        "| generator CPU | errors |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for concurrency, rounds in by_concurrency.items():
        for key, r in rounds.items():
            lines.append(
                f"| {concurrency} | {TARGETS[key]} | {r.rate:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                f"{r.p999_ms:.2f} | {r.server_cpu:.0%} | {r.others:.0%} | {r.client_cpu:.0%} | {r.errors} |"
            )
    return "\n".join(lines)


def ratios_table(by_concurrency: dict[int, dict[str, Round]]) -> str:
    postgres = all("e" in r and "d" in r for r in by_concurrency.values())
    head = "| concurrency | (c)/(a) wavehook vs bare | (c)/(b) wavehook vs naive | (b)/(a) naive vs bare |"
    rule = "|---:|---:|---:|---:|"
    if postgres:
        head += " (e)/(d) wavehook vs naive, PostgreSQL | (e)/(c) PostgreSQL vs SQLite |"
        rule += "---:|---:|"
    lines = [head, rule]
    for concurrency, r in by_concurrency.items():
        line = (
            f"| {concurrency} | {ratio(r['c'].rate, r['a'].rate):.2f}× | {ratio(r['c'].rate, r['b'].rate):.2f}× | "
            f"{ratio(r['b'].rate, r['a'].rate):.2f}× |"
        )
        if postgres:
            line += f" {ratio(r['e'].rate, r['d'].rate):.2f}× | {ratio(r['e'].rate, r['c'].rate):.2f}× |"
        lines.append(line)
    return "\n".join(lines)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def at_least(label: str, value: float, bound: float, unit: str = "×") -> str:
    """A PASS/MISS line for a lower bound, with the margin in percent of the bound."""
    margin = abs(value - bound) / bound if bound else 0.0
    if value >= bound:
        return f"PASS  {label}: {value:.2f}{unit} (target ≥ {bound:g}{unit}; {margin:.0%} above)"
    return f"MISS  {label}: {value:.2f}{unit} (target ≥ {bound:g}{unit}; {margin:.0%} short)"


def at_most(label: str, value: float, bound: float, unit: str) -> str:
    """A PASS/MISS line for an upper bound, with the margin in percent of the bound."""
    margin = abs(bound - value) / bound if bound else 0.0
    if value <= bound:
        return f"PASS  {label}: {value:.1f} {unit} (target ≤ {bound:g} {unit}; {margin:.0%} headroom)"
    return f"MISS  {label}: {value:.1f} {unit} (target ≤ {bound:g} {unit}; {margin:.0%} over)"
