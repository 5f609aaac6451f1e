"""What the numbers were measured on: machine, load, versions, settings."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import sqlite3
import time
from pathlib import Path

from bench.system import CLIENT_CORE, SERVER_CORE, can_pin


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def fsync_ms(directory: Path, count: int = 100) -> tuple[float, float]:
    """(p50, p90) of an fsync after a 4 KiB append in ``directory``: what every commit under FULL pays."""
    path = directory / "fsync-probe"
    samples: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(count):
            os.write(fd, b"\0" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    samples.sort()
    return samples[len(samples) // 2], samples[len(samples) * 9 // 10]


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def describe() -> dict[str, str]:
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores, Linux {platform.release()}",
        "load average at start": load_average(),
        "software": (
            f"Python {platform.python_version()}, uvicorn {_version('uvicorn')} (httptools "
            f"{_version('httptools')}, uvloop {_version('uvloop')}), Starlette {_version('starlette')}, "
            f"SQLite {sqlite3.sqlite_version}, sqlite-utils {_version('sqlite-utils')}"
        ),
        "pinning": (
            f"each server on core {SERVER_CORE}, the load generator and wrk on core {CLIENT_CORE}"
            if can_pin()
            else "none (fewer than two cores)"
        ),
    }
