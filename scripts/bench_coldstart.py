"""Cold start: process start to the first accepted signed delivery, for ``wavehook serve`` and for a bare
uvicorn + Starlette app (the same uvicorn settings), side by side in one run; medians of several runs.

Serverless platforms start a process per scale-up, so this is the wait a first delivery sees. Each run starts a
fresh process, sends one pre-signed delivery as soon as the port accepts a connection, repeats it until answered
200, and stops the process. ``wavehook serve`` starts twice per run: on a new ledger file (the very first start,
which creates the schema) and on an existing one (every later start: a scale-up opens the ledger the first process
made). The runs of the targets are interleaved. Beside it: ``wavehook --help`` and ``wavehook models`` (a command
that needs no server), and the import of the web application alone. Also the AWS Lambda handler: a fresh Python
process that imports ``wavehook.aws_lambda`` and hands it one API Gateway HTTP API (v2) event carrying a signed
delivery, until it returns the 200 (what a cold Lambda container does). With ``--postgres``, ``wavehook serve`` and
the Lambda handler once more on a PostgreSQL ledger whose tables exist (an instance added to a running deployment):
the URL given, or with ``--postgres cluster`` a database on a throwaway local server from the machine's Debian
binaries (tests/postgres.py, as the test suite starts it), removed afterwards.

Every target starts from bytecode, as an installed wavehook does (pip compiles what it installs): the script
first compiles wavehook's packages and the baselines' modules where they are (an editable install or a checkout
keeps them beside the sources, and under PYTHONDONTWRITEBYTECODE, as in the Dockerfile, nothing else would), so
no start pays for compiling source. The bare app runs under the server ``wavehook serve`` runs, with the same
settings from the same function (``scripts/bench/serve.py``).

    .venv/bin/python scripts/bench_coldstart.py             # 7 runs of each
    .venv/bin/python scripts/bench_coldstart.py --runs 3 --postgres cluster
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from bench.deliveries import Signer
from bench.system import free_port
from bench.targets import PYTHON, SCRIPTS, WAVEHOOK

SECRET = "whsec_Y29sZC1zdGFydC1iZW5jaG1hcmstc2VjcmV0"
DEADLINE_SECONDS = 30.0
EXISTING = "existing.db"  # made by a start before the measured ones


def first_answer(port: int, request: bytes, started: float) -> float:
    """Seconds from ``started`` until the server on ``port`` answers ``request`` with 200."""
    while time.perf_counter() - started < DEADLINE_SECONDS:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(request)
                status = conn.recv(64)
        except OSError:
            time.sleep(0.002)
            continue
        if status.startswith(b"HTTP/1.1 200"):
            return time.perf_counter() - started
        time.sleep(0.002)
    raise RuntimeError(f"no 200 within {DEADLINE_SECONDS:g} s on port {port}")


def one_start(args: Sequence[str], env: Mapping[str, str], port: int, request: bytes) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        args, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        return first_answer(port, request, started)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wavehook_start(workdir: Path, run: int, signer: Signer, db: str | None = None) -> float:
    """``wavehook serve`` on the ledger ``db`` (default: a new file for this run)."""
    port = free_port()
    env = {
        "WAVESPEED_WEBHOOK_SECRET": SECRET,
        "WAVEHOOK_DB": db or str(workdir / f"cold-{run}.db"),
        "WAVEHOOK_MEDIA_DIR": str(workdir / "media"),
        "WAVEHOOK_LOG_FORMAT": "json",
    }
    return one_start([WAVEHOOK, "serve", "--port", str(port)], env, port, signer.request()[1])


def wavehook_existing_start(workdir: Path, run: int, signer: Signer) -> float:
    return wavehook_start(workdir, run, signer, str(workdir / EXISTING))


LAMBDA = """
import json, sys
from wavehook.aws_lambda import handler
print(handler(json.loads(sys.stdin.readline()), None)["statusCode"], flush=True)
"""


def http_api_event(request: bytes) -> dict[str, object]:
    """The API Gateway HTTP API (v2) event carrying the same signed request a server would be sent."""
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    path = lines[0].split(" ")[1]
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines[1:])}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1"}},
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def lambda_start(workdir: Path, run: int, signer: Signer, db: str | None = None) -> float:
    """Seconds from spawning a Python process to the Lambda handler's 200 for its first event."""
    env = {
        **os.environ,
        "WAVESPEED_WEBHOOK_SECRET": SECRET,
        "WAVEHOOK_DB": db or str(workdir / f"lambda-{run}.db"),
        "WAVEHOOK_LOG_FORMAT": "json",
    }
    event = json.dumps(http_api_event(signer.request()[1])) + "\n"
    started = time.perf_counter()
    with subprocess.Popen(
        [PYTHON, "-c", LAMBDA], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as process:
        stdin, stdout = process.stdin, process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("the Lambda process has no pipes")
        stdin.write(event.encode())
        stdin.close()
        status = stdout.readline().strip()
        took = time.perf_counter() - started
    if status != b"200":
        raise RuntimeError(f"the Lambda handler answered {status!r}, not 200")
    return took


@contextlib.contextmanager
def postgres_ledger(given: str | None) -> Iterator[str | None]:
    """The PostgreSQL URL to measure on: as given, or a migrated database on a throwaway local cluster."""
    if given != "cluster":
        yield given
        return
    sys.path.insert(0, str(SCRIPTS.parent))  # tests/postgres.py: the cluster the test suite starts
    from tests.postgres import Databases, cluster

    with cluster() as server:
        yield Databases(server).create()


def bare_start(_workdir: Path, _run: int, signer: Signer) -> float:
    port = free_port()
    env = {"PYTHONPATH": str(SCRIPTS)}
    return one_start([PYTHON, "-m", "bench.serve", "bare", "--port", str(port)], env, port, signer.request()[1])


def compile_bytecode() -> None:
    """Compile wavehook's packages, wherever they are installed, and the baselines' modules."""
    folders = [SCRIPTS / "bench"]
    for package in ("receiver", "submitter", "sandbox", "wavehook"):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"package {package} is not installed in {PYTHON}")
        folders.extend(Path(folder) for folder in spec.submodule_search_locations)
    for folder in folders:
        if not compileall.compile_dir(folder, quiet=1):
            raise RuntimeError(f"cannot compile {folder}")


def command_time(args: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="starts of each target (default 7)")
    parser.add_argument("--json", type=Path, help="also write the medians to this JSON file")
    parser.add_argument(
        "--postgres", help="a postgresql:// URL, or 'cluster' for a throwaway local server: also measure on it"
    )
    args = parser.parse_args(argv)
    with postgres_ledger(args.postgres) as postgres:
        return measure(args, postgres)


def measure(args: argparse.Namespace, postgres: str | None) -> dict[str, float]:
    signer = Signer(SECRET)
    starts: dict[str, Callable[[Path, int, Signer], float]] = {
        "wavehook serve, new ledger": wavehook_start,
        "wavehook serve, existing": wavehook_existing_start,
        "bare": bare_start,
        "Lambda handler": lambda_start,
    }
    if postgres:
        starts["wavehook serve, PostgreSQL"] = lambda d, r, s: wavehook_start(d, r, s, postgres)
        starts["Lambda handler, PostgreSQL"] = lambda d, r, s: lambda_start(d, r, s, postgres)
    samples: dict[str, list[float]] = {name: [] for name in starts}
    commands = {
        "wavehook --help": [WAVEHOOK, "--help"],
        "wavehook models": [WAVEHOOK, "models"],
        "import receiver.http.app": [PYTHON, "-c", "import receiver.http.app"],
        "python -c pass": [PYTHON, "-c", "pass"],
    }
    for name in commands:
        samples[name] = []
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="wavehook-coldstart-") as tmp:
        workdir = Path(tmp)
        wavehook_existing_start(workdir, -1, signer)  # creates the existing ledger; not measured
        for run in range(args.runs):
            for name, start in starts.items():
                samples[name].append(start(workdir, run, signer))
            for name, command in commands.items():
                samples[name].append(command_time(command))
    medians = {name: median_ms(values) for name, values in samples.items()}
    ratios = {
        "new ledger / bare": round(medians["wavehook serve, new ledger"] / medians["bare"], 2),
        "existing / bare": round(medians["wavehook serve, existing"] / medians["bare"], 2),
    }
    if postgres:
        ratios["PostgreSQL / bare"] = round(medians["wavehook serve, PostgreSQL"] / medians["bare"], 2)
    print(f"Cold start, medians of {args.runs} runs (ms), {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}:")
    for name, value in medians.items():
        print(f"  {name:<28} {value:>8.1f}")
    for name, ratio in ratios.items():
        print(f"  wavehook serve, {name:<18} {ratio:>5.2f}x   (target: within 1.3x)")
    if args.json:
        args.json.write_text(json.dumps({**medians, **{f"ratio {name}": r for name, r in ratios.items()}}, indent=2))
    return medians


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
