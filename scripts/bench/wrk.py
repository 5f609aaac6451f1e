"""The same bare-endpoint round driven by wrk (Debian's ``wrk``), to show the load generator keeps up."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.system import CLIENT_CORE, can_pin

_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["webhook-id"] = "%(id)s"
wrk.headers["webhook-timestamp"] = "%(ts)s"
wrk.headers["webhook-signature"] = "%(sig)s"
wrk.body = [==[%(body)s]==]
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclasses.dataclass
class WrkResult:
    rate: float
    p50_ms: float
    p99_ms: float


def available() -> bool:
    return shutil.which("wrk") is not None


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run(port: int, request: bytes, *, concurrency: int, duration: float) -> WrkResult:
    """One wrk round (one thread, pinned like our generator) posting the headers and body of ``request``."""
    head, body = request.split(b"\r\n\r\n", 1)
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    script = _SCRIPT % {
        "id": headers["webhook-id"],
        "ts": headers["webhook-timestamp"],
        "sig": headers["webhook-signature"],
        "body": body.decode(),
    }
    with tempfile.TemporaryDirectory() as directory:
        lua = Path(directory) / "post.lua"
        lua.write_text(script)
        args = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--latency", "-s", str(lua)]
        args.append(f"http://127.0.0.1:{port}/webhooks/wavespeed")
        output = subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, {CLIENT_CORE})) if can_pin() else None,
        ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if not (rate and p50 and p99):
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return WrkResult(float(rate.group(1)), _ms(p50.group(1)), _ms(p99.group(1)))
