"""Cold start: from process start to the first accepted signed delivery, the figure a platform that starts an
instance per scale-up (or a Lambda container per cold invocation) makes a provider wait.

Each run starts a fresh process on an empty ledger and, from the moment it is spawned, sends the same signed
delivery every 2 ms until one is answered 200; the time from spawn to that answer is the cold start. Shapes:

- ``serve``: ``wavehook serve`` on a SQLite ledger in a new directory;
- ``serve-postgres``: the same on a PostgreSQL ledger whose tables exist (as when an instance is added to a
  running deployment): the URL given with ``--postgres URL``, or with ``--postgres cluster`` a database on a
  throwaway local server started from the machine's Debian binaries (tests/postgres.py), removed afterwards;
- ``lambda``: a new Python process that imports ``wavehook.aws_lambda`` and hands it one API Gateway HTTP API
  event (what a cold Lambda container does), on a SQLite ledger; ``lambda-postgres``: the same on PostgreSQL.

    .venv/bin/python scripts/bench_cold_start.py                      # serve and lambda, 7 runs each
    .venv/bin/python scripts/bench_cold_start.py --postgres cluster   # and serve on a throwaway PostgreSQL
    .venv/bin/python scripts/bench_cold_start.py --postgres postgresql://user@127.0.0.1:5432/db
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import environment
from bench.deliveries import Signer
from bench.system import free_port

WAVEHOOK = str(Path(sys.executable).with_name("wavehook"))
SECRET = "whsec_Y29sZC1zdGFydC1iZW5jaG1hcmstc2VjcmV0"
LAMBDA = """
import json, sys, time
from wavehook.aws_lambda import handler
answer = handler(json.loads(sys.argv[1]), None)
print(json.dumps({"status": answer["statusCode"], "at": time.time()}))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="runs per shape (default 7; the median is reported)")
    parser.add_argument(
        "--postgres", help="a postgresql:// URL, or 'cluster' for a throwaway local server: also measure serve on it"
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    return parser.parse_args(argv)


def _accepted(port: int, request: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(request)
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def serve_once(db: str, directory: Path) -> float:
    """Seconds from spawning ``wavehook serve`` to its first 200 to a signed delivery."""
    port = free_port()
    _id, request = Signer(SECRET).request()
    env = {
        **os.environ,
        "WAVESPEED_WEBHOOK_SECRET": SECRET,
        "WAVEHOOK_DB": db,
        "WAVEHOOK_LOG_FORMAT": "json",
        "WAVEHOOK_DISPATCH_IN_WEB": "false",
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [WAVEHOOK, "serve", "--port", str(port)],
        env=env,
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = started + 60
        while not _accepted(port, request):
            if process.poll() is not None or time.perf_counter() > deadline:
                raise SystemExit(f"wavehook serve did not accept a delivery (exit {process.poll()})")
            time.sleep(0.002)
        return time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(10)


def lambda_once(db: str, directory: Path) -> float:
    """Seconds from spawning a Python process to the Lambda handler's answer to its first event."""
    from bench.deliveries import PATH

    _id, request = Signer(SECRET).request()
    head, _, body = request.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": PATH,
        "rawQueryString": "",
        "headers": {name.lower(): value for name, value in headers.items()},
        "requestContext": {"http": {"method": "POST", "path": PATH, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1"}},
        "body": body.decode(),
        "isBase64Encoded": False,
    }
    env = {
        **os.environ,
        "WAVESPEED_WEBHOOK_SECRET": SECRET,
        "WAVEHOOK_DB": db,
        "WAVEHOOK_LOG_FORMAT": "json",
    }
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-c", LAMBDA, json.dumps(event)],
        env=env,
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    if not answer or answer["status"] != 200:
        raise SystemExit(f"the Lambda handler did not accept the delivery: {done.stderr[-2000:]}")
    return float(answer["at"]) - started


@contextlib.contextmanager
def postgres_ledger(given: str | None) -> Iterator[str | None]:
    """The PostgreSQL URL to measure on: as given, or a migrated database on a throwaway cluster."""
    if given != "cluster":
        yield given
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/postgres.py: the same cluster as CI's
    from tests.postgres import Databases, cluster

    with cluster() as server:
        yield Databases(server).create()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    machine = environment.describe()
    print(f"{machine['date']}; {machine['machine']}; {machine['software']}")
    print(f"load average at start: {machine['load average at start']}")
    with postgres_ledger(args.postgres) as postgres:
        figures: dict[str, Any] = measure(args.runs, postgres)
    print(f"load average at the end: {environment.load_average()}")
    if args.json:
        machine["load average at the end"] = environment.load_average()
        args.json.write_text(json.dumps({**figures, "environment": machine}, indent=2))


def measure(runs: int, postgres: str | None) -> dict[str, dict[str, float]]:
    shapes: dict[str, Callable[[Path], float]] = {
        "serve": lambda d: serve_once(str(d / "wavehook.db"), d),
        "lambda": lambda d: lambda_once(str(d / "wavehook.db"), d),
    }
    if postgres:
        shapes["serve-postgres"] = lambda d: serve_once(postgres, d)
        shapes["lambda-postgres"] = lambda d: lambda_once(postgres, d)
    figures: dict[str, dict[str, float]] = {}
    for name, once in shapes.items():
        times = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix="wavehook-cold-") as directory:
                times.append(once(Path(directory)) * 1000)
        figures[name] = {
            "median_ms": round(statistics.median(times), 1),
            "min_ms": round(min(times), 1),
            "max_ms": round(max(times), 1),
            "runs": runs,
        }
        print(f"{name:<15} median {figures[name]['median_ms']:7.1f} ms  (min {min(times):.1f}, max {max(times):.1f})")
    return figures


if __name__ == "__main__":
    main()
