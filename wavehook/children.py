"""The demo's child processes: started in their own session (so a terminal's Ctrl-C reaches only the demo,
which then stops them in order), their output kept in a log file, stopped with SIGTERM, then SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

STOP_GRACE_SECONDS = 8.0


def free_port() -> int:
    """A loopback port nobody listens on now (the child binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChildFailed(RuntimeError):
    """A child exited or did not become healthy; the message ends with the tail of its log."""


class Child:
    """``python -m wavehook <args>`` on a loopback port."""

    def __init__(self, name: str, args: list[str], *, port: int, env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.args = [sys.executable, "-m", "wavehook", *args, "--port", str(port)]
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = dict(env)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, deadline: float) -> None:
        """Until ``/healthz`` answers 200; ChildFailed if the child exits or ``deadline`` (monotonic) passes."""
        while True:
            if not self.alive():
                raise ChildFailed(f"the {self.name} exited early:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ChildFailed(f"the {self.name} did not answer on {self.url}:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM to the child's process group (its shutdown runs), SIGKILL if it outlasts the grace period."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_path.exists():
            return "(no output)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
