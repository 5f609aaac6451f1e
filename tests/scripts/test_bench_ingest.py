"""scripts/bench_ingest.py and its helpers: the load generator counts answers right, the report says PASS/MISS."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from typing import Any

import pytest
import uvloop
from bench.database import Groups
from bench.deliveries import Signer
from bench.loadgen import _Connection, _Shared, drive
from bench.report import Round, at_least, at_most, percentile
from bench.summary import Results, _postgres, _targets
from bench.targets import Workdir

from tests.support import ROOT

ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-length: 35\r\ncontent-type: application/json\r\n\r\n"
    b'{"received":true,"duplicate":false}'
)


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        pass


def test_answers_split_across_reads_and_joined_in_one_are_each_counted() -> None:
    """An answer cut at every byte, and two answers in one read, are parsed into one result each."""
    loop = asyncio.new_event_loop()
    try:
        shared = _Shared([b"request"] * 3, float("inf"), record_sends=False)
        connection = _Connection(shared, None, loop)
        transport = _Transport()
        connection.connection_made(transport)  # type: ignore[arg-type]
        connection.start(0.0)
        for byte in ANSWER:
            connection.data_received(bytes([byte]))
        connection.data_received(ANSWER + ANSWER.replace(b"200 OK", b"401 Unauthorized"))
    finally:
        loop.close()
    assert dict(shared.statuses) == {200: 2, 401: 1}
    assert len(transport.written) == 3  # the next request goes out as soon as an answer is complete


def test_percentile_is_nearest_rank() -> None:
    """p50 of 1..100 is 50, p99 is 99, p100 is the maximum, and an empty list gives 0."""
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (50, 99, 100)
    assert percentile([], 0.5) == 0.0


def test_target_lines_say_pass_or_miss_with_the_margin() -> None:
    """A missed lower bound says how far short; a met upper bound says how much headroom is left."""
    assert at_least("ratio", 0.30, 0.33).startswith("MISS  ratio: 0.30× (target ≥ 0.33×; 9% short)")
    assert at_most("p99", 12.0, 15.0, "ms") == "PASS  p99: 12.0 ms (target ≤ 15 ms; 20% headroom)"


def _round(rate: float, server_cpu: float) -> Round:
    return Round(rate, 1.0, 2.0, 3.0, server_cpu, 0.5, int(rate), 0, exhausted=False)


def test_a_missed_postgresql_ratio_names_each_receivers_cpu_per_delivery() -> None:
    """Below 2.5× the naive PostgreSQL receiver, the report gives both receivers' CPU per delivery and the rate
    wavehook's cost allows on a fully busy core; a met ratio adds no such line."""
    medians = {32: {k: _round(1000.0, 0.9) for k in "abc"}}
    medians[32]["d"] = _round(2500.0, 0.95)  # 380 µs a delivery
    medians[32]["e"] = _round(4000.0, 0.72)  # 180 µs a delivery: at most ~5,556/s
    lines = _targets(Results(options={}, environment={}, medians=medians))
    (miss,) = [i for i, line in enumerate(lines) if "wavehook vs naive on PostgreSQL" in line]
    assert lines[miss].startswith("MISS")
    assert lines[miss + 1] == (
        "      (e) at c=32: CPU per delivery: (d) 380 µs with its core 95% busy, (e) 180 µs with its core 72% "
        "busy; at that cost a fully busy core would answer at most ~5,556/s, 2.22× (d)"
    )
    medians[32]["e"] = _round(7000.0, 0.9)
    lines = _targets(Results(options={}, environment={}, medians=medians))
    assert not any("CPU per delivery" in line for line in lines)


def test_a_missed_postgresql_ratio_says_where_each_groups_time_went() -> None:
    """With PostgreSQL's account of the group statements, a miss says how often a group went and how much of
    that the server spent running the statement and flushing its commit; the PostgreSQL bullet says it at every
    concurrency measured, met or not."""
    medians = {c: {k: _round(1000.0, 0.9) for k in "abc"} for c in (32, 128)}
    for c in medians:
        medians[c]["d"] = _round(2500.0, 0.95)
    medians[32]["e"] = _round(4000.0, 0.72)
    medians[32]["e"].groups = Groups(per_second=250.0, statement_ms=1.2, flush_ms=0.3)
    medians[128]["e"] = _round(7000.0, 0.9)
    medians[128]["e"].groups = Groups(per_second=200.0, statement_ms=2.0, flush_ms=0.25)
    results = Results(options={}, environment={}, medians=medians, postgres="PostgreSQL 15")
    lines = _targets(results)
    (miss,) = [i for i, line in enumerate(lines) if "c=32 wavehook vs naive on PostgreSQL" in line]
    assert lines[miss + 2] == (
        "      (e) at c=32: a group every 4.00 ms (250/s, 16.0 deliveries each): PostgreSQL ran its statement in "
        "1.20 ms and flushed its commit's WAL in 0.30 ms; the other 2.50 ms were spent outside them"
    )
    assert not any("c=128: a group every" in line for line in lines)  # met: no explanation owed
    (bullet,) = [line for line in _postgres(results) if line.startswith("- **Groups on PostgreSQL**")]
    assert "at c=32, a group every 4.00 ms (250/s, 16.0 deliveries each)" in bullet
    assert (
        "; at c=128, a group every 5.00 ms (200/s, 35.0 deliveries each): PostgreSQL ran its statement in 2.00 ms"
        in bullet
    )


@pytest.mark.integration
def test_generator_gets_every_answer_from_a_real_naive_receiver(tmp_path: Any) -> None:
    """Every pre-signed delivery sent to the naive baseline is answered 200, and the run stops when they run out."""
    work = Workdir(tmp_path, "whsec_dGVzdA==")
    with work.naive() as server:
        requests = Signer(work.secret).pool(300)
        result = uvloop.run(drive("127.0.0.1", server.port, requests, concurrency=8, duration=60))
    assert (result.completed, dict(result.statuses), result.exhausted) == (300, {200: 300}, True)


@pytest.mark.integration
def test_quick_run_prints_the_markdown_report(tmp_path: Any) -> None:
    """A tiny run of the whole script measures the five targets (two on a throwaway PostgreSQL), gives
    PostgreSQL's account of wavehook's groups, and ends with one line per target."""
    args = ["--duration", "0.5", "--warmup", "0.2", "--rounds", "1", "--concurrency", "8"]
    args += ["--rss-deliveries", "1000", "--dispatch-duration", "1", "--dispatch-rate", "50", "--busy-slots", "2"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_ingest.py"), *args, "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = done.stdout
    targets = ("(a) bare Starlette", "(b) naive sqlite-utils", "(c) wavehook serve")
    targets += ("(d) naive PostgreSQL", "(e) wavehook serve on PostgreSQL")
    for target in targets:
        row = re.search(rf"\| 8 \| {re.escape(target)} \|.*\| (\d+) \|$", report, re.MULTILINE)
        assert row is not None, report
        assert row.group(1) == "0", report  # no delivery refused
    # PostgreSQL's own account of (e)'s groups, read from its statistics once it had all been reported.
    account = re.search(
        r"^- \*\*Groups on PostgreSQL\*\*.*: at c=8, a group every [\d.]+ ms \(([\d,]+)/s", report, re.M
    )
    assert account is not None, report
    assert int(account.group(1).replace(",", "")) > 0
    verdicts = re.findall(r"^(PASS|MISS)  (.+?):", report, re.MULTILINE)
    assert [label for _verdict, label in verdicts] == [
        "c=8 durable ingest vs bare",
        "c=8 durable ingest vs naive",
        "c=8 wavehook vs naive on PostgreSQL",
        "c=8 wavehook on PostgreSQL vs on SQLite",
        "delivery-to-handler-start p50",
        "delivery-to-handler-start p50 across instances (PostgreSQL)",
        "RSS after 1,000 deliveries (fewer than the 100,000 of the target)",
    ]
    assert "Delivery to handler start across instances on PostgreSQL" in report
    assert "Memory and size on PostgreSQL" in report
    assert "Delivery to handler start" in report
    assert "handler slots are busy" in report
