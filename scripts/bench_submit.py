"""Benchmark submissions: the submitter against a real sandbox that answers each API call after a delay.

A ``wavehook sandbox`` process (pinned to core 0) answers every API call after ``--answer-delay`` seconds, as
a provider across the internet would; its tasks never end during the run, so no webhook competes for the
cores. This process (pinned to core 1) drives ``AsyncSubmitter`` with a real ledger (SQLite, WAL,
``synchronous=FULL``) and logs as the CLI does (JSON lines, to a file): first ``submit()`` from as many
workers as the concurrency, timing each job, then ``batch()`` with the same number of jobs. At concurrency c
nothing can beat c / delay submissions per second; what the submitter adds on top of the provider's answer
is its overhead: the p50 latency minus the delay at concurrency 1, and its CPU time per job.

    .venv/bin/python scripts/bench_submit.py            # 50 jobs per slot at concurrency 1, 16, 64 (about 100 s)
    .venv/bin/python scripts/bench_submit.py --quick    # a smoke run of a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import environment
from bench.report import percentile
from bench.system import CLIENT_CORE, SERVER_CORE, Server, can_pin, cpu_seconds, free_port, pin_client, run_directory

from receiver import logs
from receiver.settings import Secret, Settings
from submitter import AsyncSubmitter, SubmitterError
from submitter.batch import Job

WAVEHOOK = str(Path(sys.executable).with_name("wavehook"))
MODEL = "bytedance/seedance-v1-lite-t2v-480p"
NEVER = "86400"  # the sandbox's longest clock: tasks stay queued, so no webhook is sent during the run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated levels (default 1,16,64)")
    parser.add_argument(
        "--answer-delay", type=float, default=0.3, help="seconds the sandbox takes to answer each call (default 0.3)"
    )
    parser.add_argument("--jobs-per-slot", type=int, default=50, help="jobs per level = this × concurrency")
    parser.add_argument("--min-jobs", type=int, default=50, help="at least this many jobs per level (default 50)")
    parser.add_argument("--quick", action="store_true", help="6 jobs per slot, at least 12 per level")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--workdir", type=Path, help="keep the ledger and logs in a new run-* folder here")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs_per_slot, args.min_jobs = 6, 12
    args.levels = [int(part) for part in args.concurrency.split(",") if part.strip()]
    return args


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclasses.dataclass
class Level:
    mode: str  # "submit" (one timed submit() per job) or "batch" (one batch() of every job)
    concurrency: int
    jobs: int
    seconds: float
    cpu_seconds: float  # this process: the submitter, its ledger writer thread and its HTTP client
    sandbox_cpu_seconds: float
    latencies: list[float] = dataclasses.field(default_factory=list)
    # Jobs not answered with a task (e.g. an answer lost on a closing connection: recorded as unknown).
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def rate(self) -> float:
        """Jobs answered with a task, per second."""
        return (self.jobs - len(self.problems)) / self.seconds

    def latency_ms(self, fraction: float) -> float:
        return percentile(sorted(self.latencies), fraction) * 1000

    @property
    def cpu_ms_per_job(self) -> float:
        return self.cpu_seconds / self.jobs * 1000


class Measure:
    """Wall time, and the CPU of this process and of the sandbox, across one level."""

    def __init__(self, sandbox_pid: int) -> None:
        self.sandbox_pid = sandbox_pid
        self.seconds = self.cpu = self.sandbox_cpu = 0.0

    def __enter__(self) -> Measure:
        self.seconds, self.cpu = time.perf_counter(), time.process_time()
        self.sandbox_cpu = cpu_seconds(self.sandbox_pid)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.perf_counter() - self.seconds
        self.cpu = time.process_time() - self.cpu
        self.sandbox_cpu = cpu_seconds(self.sandbox_pid) - self.sandbox_cpu


async def submit_level(submitter: AsyncSubmitter, sandbox_pid: int, concurrency: int, jobs: int) -> Level:
    """``jobs`` submits from ``concurrency`` workers, each job timed from the call to its recorded answer."""
    numbers = iter(range(jobs))
    latencies: list[float] = []
    problems: list[str] = []

    async def worker() -> None:
        for number in numbers:
            started = time.perf_counter()
            try:
                await submitter.submit(MODEL, {"prompt": f"submit c={concurrency} #{number}"})
            except SubmitterError as exc:
                problems.append(str(exc))
            else:
                latencies.append(time.perf_counter() - started)

    with Measure(sandbox_pid) as measured:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Level("submit", concurrency, jobs, measured.seconds, measured.cpu, measured.sandbox_cpu, latencies, problems)


async def batch_level(submitter: AsyncSubmitter, sandbox_pid: int, concurrency: int, jobs: int) -> Level:
    """One ``batch()`` of ``jobs`` fresh jobs at ``concurrency``: checked, looked up in the ledger, sent."""
    batch = [Job(n + 1, f"batch-{concurrency}-{n}", MODEL, {"prompt": f"batch #{n}"}) for n in range(jobs)]
    with Measure(sandbox_pid) as measured:
        summary = await submitter.batch(batch, concurrency=concurrency)
    level = Level("batch", concurrency, jobs, measured.seconds, measured.cpu, measured.sandbox_cpu)
    level.problems = summary.problems
    return level


async def run(args: argparse.Namespace, sandbox: Server, work: Path) -> list[Level]:
    settings = Settings(
        api_key=Secret("bench-key"),
        base_url=f"http://127.0.0.1:{sandbox.port}",
        public_url="http://127.0.0.1:9",  # never called: the tasks do not end during the run
        db=str(work / "ledger.db"),
        log_format="json",
    )
    levels: list[Level] = []
    async with await AsyncSubmitter.open(settings) as submitter:
        log("warm-up: 32 submits at concurrency 16")
        await submit_level(submitter, sandbox.pid, 16, 32)
        for concurrency in args.levels:
            jobs = max(args.min_jobs, args.jobs_per_slot * concurrency)
            for measure in (submit_level, batch_level):
                level = await measure(submitter, sandbox.pid, concurrency, jobs)
                log(f"{level.mode} c={concurrency}: {jobs} jobs in {level.seconds:.1f} s, {level.rate:.1f}/s")
                for problem in level.problems:
                    log(f"  not submitted: {problem}")
                levels.append(level)
    return levels


def _row(level: Level, delay: float) -> str:
    timed = level.mode == "submit"
    p50, p99 = (f"{level.latency_ms(f):.0f} ms" if timed else "–" for f in (0.5, 0.99))
    cells = [
        level.mode,
        str(level.concurrency),
        str(level.jobs),
        f"{level.rate:.1f}",
        f"{level.concurrency / delay:.1f}",
        p50,
        p99,
        f"{level.cpu_ms_per_job:.1f} ms",
        f"{level.sandbox_cpu_seconds / level.seconds:.0%}",
        str(len(level.problems)),
    ]
    return "| " + " | ".join(cells) + " |"


def markdown(args: argparse.Namespace, levels: list[Level], facts: dict[str, Any]) -> str:
    delay = args.answer_delay
    lines = [
        "### Submitting: scripts/bench_submit.py",
        "",
        f"Measured {facts['date']} on {facts['machine']}; load average {facts['load_start']} at the start, "
        f"{facts['load_end']} at the end. {facts['software']}. {facts['pinning']}. The sandbox answers every API "
        f"call after {delay * 1000:g} ms. Ledger: SQLite, WAL, synchronous=FULL, fsync p50 "
        f"{facts['fsync_p50_ms']:.2f} ms on this disk.",
        "",
        "| mode | concurrency | jobs | submissions/s | ceiling c/delay | p50 | p99 | submitter CPU/job | sandbox CPU "
        "| not submitted |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(_row(level, delay) for level in levels),
    ]
    problems = [f"- {level.mode} c={level.concurrency}: {p}" for level in levels for p in level.problems]
    if problems:
        lines += ["", "Jobs not submitted (each is in the ledger, to be resolved by `wavehook reconcile`):", *problems]
    single = next((level for level in levels if level.mode == "submit" and level.concurrency == 1), None)
    if single is not None:
        lines += [
            "",
            f"The submitter's own time per job at concurrency 1: p50 {single.latency_ms(0.5) - delay * 1000:.1f} ms "
            f"beyond the provider's answer (validation, the ledger row committed before the request and again "
            f"after the answer, the HTTP exchange), of which {single.cpu_ms_per_job:.1f} ms is CPU.",
        ]
    return "\n".join(lines)


def describe(work: Path) -> dict[str, Any]:
    """The machine, its load, the software, the pinning and the ledger disk's fsync time."""
    facts: dict[str, Any] = environment.describe()
    facts["pinning"] = (
        f"The sandbox runs on core {SERVER_CORE}, the submitter on core {CLIENT_CORE}"
        if can_pin()
        else "The sandbox and the submitter share the cores (not pinned)"
    )
    facts["load_start"] = facts.pop("load average at start")
    facts["fsync_p50_ms"] = environment.fsync_ms(work)[0]
    return facts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pin_client(log)
    port = free_port()
    command = [WAVEHOOK, "sandbox", "--port", str(port), "--secret", "whsec_YmVuY2gtc3VibWl0LXNlY3JldA=="]
    command += ["--answer-delay", str(args.answer_delay), "--queue-time", NEVER, "--run-time", NEVER]
    # A fresh folder per run under --workdir: an earlier run's batch jobs would be skipped as already sent.
    with run_directory(args.workdir, "wavehook-bench-submit-", log) as work:
        facts = describe(work)
        with open(work / "submitter.log", "w") as stream:
            logs.configure(log_format="json", level="info", stream=stream)
            with Server("sandbox", command, {"WAVEHOOK_LOG_FORMAT": "json"}, work / "sandbox.log", port) as sandbox:
                levels = asyncio.run(run(args, sandbox, work))
        facts["load_end"] = environment.load_average()
    print(markdown(args, levels, facts))
    if args.json:
        figures = [{**dataclasses.asdict(level), "rate": level.rate} for level in levels]
        options = {key: str(value) for key, value in vars(args).items()}
        args.json.write_text(json.dumps({"options": options, **facts, "levels": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
