"""Benchmark durable ingest: wavehook serve against the bare-Starlette ceiling and a naive receiver, in one run.

Three servers run as separate processes on loopback under the server ``wavehook serve`` runs (its uvicorn
settings from ``receiver.http.server.uvicorn_options``, through scripts/bench/serve.py), one worker pinned to
core 0: (a) a bare Starlette endpoint that reads the body and answers 200, (b) a naive receiver (verify,
json.loads, sqlite-utils insert, commit per request, WAL + synchronous=FULL), (c) ``wavehook serve``
(synchronous=FULL, group commit). A keep-alive load generator pinned to core 1 drives them with the same
kind of pre-signed deliveries (fresh ids, 550–670-byte bodies), warm-up first, then interleaved rounds; the
figures quoted are medians over rounds. Then: delivery-to-handler-start, answers while every handler slot
is busy, RSS after 100,000 deliveries and ledger bytes per delivery. The report ends with a Markdown block.

    .venv/bin/python scripts/bench_ingest.py            # the full run (several minutes)
    .venv/bin/python scripts/bench_ingest.py --quick    # a short smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvloop
from bench import environment, phases, wrk
from bench.compare import RATE_CEILING, compare, run_round
from bench.database import GroupStatistics, enable
from bench.deliveries import Signer
from bench.report import median_round
from bench.summary import Results, markdown
from bench.system import pin_client, run_directory
from bench.targets import Workdir

SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1ub3QtZm9yLXVzZQ=="


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured round (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per target (default 3)")
    parser.add_argument("--concurrency", default="32,128", help="comma-separated connection counts")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per target (default 3)")
    parser.add_argument("--rss-deliveries", type=int, default=100_000, help="deliveries before reading RSS")
    parser.add_argument("--dispatch-rate", type=float, default=100.0, help="deliveries/s for handler start")
    parser.add_argument("--dispatch-duration", type=float, default=10.0, help="seconds of handler-start load")
    parser.add_argument("--busy-slots", type=int, default=8, help="dispatcher slots held by sleeping handlers")
    parser.add_argument("--quick", action="store_true", help="short rounds, one of each, 10,000 for RSS")
    parser.add_argument(
        "--no-postgres",
        dest="postgres",
        action="store_false",
        help="skip (d) and (e): no throwaway PostgreSQL cluster (started from /usr/lib/postgresql/15/bin)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--workdir", type=Path, help="keep databases and server logs here (default: temporary)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = 2.0, 0.5, 1
        args.rss_deliveries, args.dispatch_duration = 10_000, 3.0
    args.concurrencies = [int(part) for part in args.concurrency.split(",") if part.strip()]
    return args


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def run(args: argparse.Namespace, work: Workdir) -> Results:
    with postgres_databases(args.postgres) as postgres:
        return await run_with(args, work, postgres)


async def run_with(args: argparse.Namespace, work: Workdir, postgres: Any) -> Results:
    signer = Signer(SECRET)
    results = Results(options={k: str(v) for k, v in vars(args).items()}, environment=environment.describe())
    results.fsync_start = environment.fsync_ms(work.path)
    if postgres is not None:
        results.postgres = postgres.server.describe()
    log("comparison: (a) bare, (b) naive, (c) wavehook serve" + (", (d), (e) on PostgreSQL" if postgres else ""))
    with contextlib.ExitStack() as stack:
        targets = {
            "a": stack.enter_context(work.bare()),
            "b": stack.enter_context(work.naive()),
            "c": stack.enter_context(work.wavehook("wavehook")),
        }
        if postgres is not None:
            targets["d"] = stack.enter_context(work.naive_pg(postgres.create(migrated=False)))
            ledger = postgres.create()
            enable(ledger)  # the statistics the report's account of (e)'s groups comes from
            targets["e"] = stack.enter_context(work.wavehook("wavehook-pg", {"WAVEHOOK_DB": ledger}))
            targets["e"].group_statistics = GroupStatistics(ledger)
        rounds = await compare(
            targets,
            signer,
            concurrencies=args.concurrencies,
            rounds=args.rounds,
            duration=args.duration,
            warmup=args.warmup,
            log=log,
        )
        for server in targets.values():
            if server.group_statistics is not None:
                server.group_statistics.finish()  # the account of its last round
        results.rounds = rounds
        results.medians = {c: {k: median_round(r) for k, r in by.items()} for c, by in rounds.items()}
        if wrk.available():
            for concurrency in args.concurrencies:
                # Back to back, so that both see the same machine: this generator, then wrk, on (a).
                log(f"generator check on (a) at c={concurrency}: this generator, then wrk")
                ours = await run_round(
                    targets["a"], signer, concurrency=concurrency, duration=args.duration, rate_hint=RATE_CEILING
                )
                theirs = wrk.run(targets["a"].port, signer.pool(1)[0], concurrency=concurrency, duration=args.duration)
                results.wrk[concurrency] = (ours, theirs)
        results.naive_db = phases.database_size(work.path / "naive.db")
    if phases.dispatcher_available():
        log(f"delivery-to-handler-start at {args.dispatch_rate:g}/s")
        results.handler_start = await phases.handler_start(
            work, signer, rate=args.dispatch_rate, duration=args.dispatch_duration
        )
        if postgres is not None:
            log("delivery-to-handler-start across instances on PostgreSQL: the receiver stores, a worker runs")
            results.handler_start_pg = await phases.handler_start(
                work, signer, rate=args.dispatch_rate, duration=args.dispatch_duration, postgres_url=postgres.create()
            )
        log(f"answers with all {args.busy_slots} handler slots busy")
        results.busy = await phases.busy_handlers(
            work, signer, slots=args.busy_slots, concurrency=min(args.concurrencies), duration=args.duration
        )
    log(f"memory: {args.rss_deliveries:,} deliveries")
    results.memory = await phases.memory(work, signer, deliveries=args.rss_deliveries, concurrency=32)
    if postgres is not None:
        log(f"memory on PostgreSQL: {args.rss_deliveries:,} deliveries")
        results.memory_pg = await phases.memory(
            work, signer, deliveries=args.rss_deliveries, concurrency=32, postgres_url=postgres.create()
        )
    results.fsync_end = environment.fsync_ms(work.path)
    return results


@contextlib.contextmanager
def postgres_databases(wanted: bool) -> Iterator[Any]:
    """A throwaway PostgreSQL cluster (the test suite's own helper) handing out fresh databases, or None."""
    if not wanted:
        yield None
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests import postgres

    try:
        server = postgres.cluster()
        started = server.__enter__()
    except postgres.ClusterUnavailable as exc:
        log(f"no PostgreSQL cluster could be started ({exc}): (d) and (e) are skipped")
        yield None
        return
    try:
        yield postgres.Databases(started)
    finally:
        server.__exit__(None, None, None)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pin_client(log)
    if not wrk.available():
        log("wrk is not installed (apt-get install wrk): the comparison with wrk is skipped")
    with run_directory(args.workdir, "wavehook-bench-", log) as path:
        results = uvloop.run(run(args, Workdir(path, SECRET)))
    text = markdown(results)
    print("\n----- 8< ----- results (Markdown, ready to paste) -----\n")
    print(text)
    print("----- >8 -----")
    if args.json:
        args.json.write_text(json.dumps(_plain(results), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
