"""The machine side of the benchmark: pinned server processes, their CPU time and memory from /proc."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from bench.database import GroupStatistics

TICKS = os.sysconf("SC_CLK_TCK")
SERVER_CORE = 0
CLIENT_CORE = 1


# Read once, before this process pins itself to the client core (after which it would see one core).
_CORES = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()


def can_pin() -> bool:
    return {SERVER_CORE, CLIENT_CORE} <= _CORES


def pin_self(core: int) -> None:
    if can_pin():
        os.sched_setaffinity(0, {core})


def pin_client(warn: Callable[[str], None]) -> None:
    """Pin this process (the load generator) to its core, or say why it cannot be kept apart from the servers."""
    if can_pin():
        pin_self(CLIENT_CORE)
    else:
        warn("warning: fewer than two cores available: the servers and the load generator are not pinned apart")


@contextlib.contextmanager
def run_directory(keep_in: Path | None, prefix: str, say: Callable[[str], None]) -> Iterator[Path]:
    """A temporary directory removed afterwards, or a fresh ``run-<time>`` folder under ``keep_in``, kept."""
    if keep_in is None:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
        return
    # A fresh folder per run: files an earlier run left there would skew this one.
    path = keep_in / time.strftime("run-%Y%m%d-%H%M%S")
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        say(f"databases and logs kept in {path}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn may run the app in a child)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process tree, from /proc/<pid>/stat (all threads included)."""
    total = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICKS


def core_ticks(core: int) -> tuple[int, int]:
    """(busy, total) clock ticks of one core since boot, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + values[4]  # idle and iowait
            return sum(values) - idle, sum(values)
    return 0, 0


def rss_bytes(pid: int) -> int:
    """Resident memory of the process tree, from VmRSS in /proc/<pid>/status."""
    total = 0
    for member in _tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


class Server:
    """A target server process, pinned to the server core, its output kept in a log file."""

    # wavehook on PostgreSQL: read around each round, so that the report can say where a group's time went.
    group_statistics: GroupStatistics | None = None

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str], log: Path, port: int) -> None:
        self.name = name
        self.port = port
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                list(args),
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=(lambda: os.sched_setaffinity(0, {SERVER_CORE})) if can_pin() else None,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log}")
            with contextlib.suppress(OSError, urllib.error.URLError), urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {url} within {timeout} s; see {self.log}")

    def __enter__(self) -> Server:
        self.wait_ready()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


class Worker(Server):
    """A process without a port (``wavehook worker``), pinned like the servers; ready once it logs that its
    dispatcher started."""

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        super().__init__(name, args, env, log, port=0)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log}")
            if b"dispatcher_started" in self.log.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start within {timeout} s; see {self.log}")
