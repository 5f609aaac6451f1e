"""Test helpers shared by every test package: an independent signer, real processes on loopback, waiting."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
WAVEHOOK = str(Path(sys.executable).with_name("wavehook"))


def sign(secret: str, webhook_id: str, timestamp: str | int, body: bytes) -> str:
    """The provider's v3 signature, written here independently of receiver.signature."""
    key = secret.removeprefix("whsec_").encode()
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v3,{digest}"


def prediction_body(prediction_id: str, status: str = "completed", **fields: Any) -> bytes:
    """A realistic webhook body (the prediction object, no envelope)."""
    data: dict[str, Any] = {
        "id": prediction_id,
        "model": "bytedance/seedance-v1-lite-t2v-480p",
        "input": {"prompt": "a red fox running through fresh snow", "duration": 5},
        "outputs": [f"https://cdn.example.com/{prediction_id}/output.mp4"] if status == "completed" else [],
        "urls": {"get": f"https://api.wavespeed.ai/api/v3/predictions/{prediction_id}/result"},
        "has_nsfw_contents": [False] if status == "completed" else [],
        "status": status,
        "created_at": "2026-11-21T10:00:00.000Z",
        "error": "",
        "timings": {"inference": 41234},
    }
    data.update(fields)
    return json.dumps(data).encode()


def signed_headers(secret: str, body: bytes, *, webhook_id: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": ts,
        "webhook-signature": sign(secret, webhook_id, ts, body),
        "content-type": "application/json",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


class Process:
    """A real child process (the receiver, the sandbox, a worker), its output kept in a log file."""

    def __init__(self, args: list[str], *, env: Mapping[str, str], log_path: Path, cwd: Path | None = None) -> None:
        self.args = args
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen(
            self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd, start_new_session=True
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """kill -9 the whole process group: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def running(process: Process, health_url: str, *, timeout: float = 30.0) -> Iterator[Process]:
    """Start ``process``, wait until ``health_url`` answers 200, stop it afterwards."""
    process.start()
    try:
        wait_for(lambda: healthy(health_url) or not process.alive(), timeout=timeout, what=f"{health_url} to answer")
        if not process.alive():
            raise AssertionError(f"process exited early:\n{process.log()}")
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[str]:
    """Run ``server`` (bound to a loopback port) in a thread; its base URL meanwhile; shut down afterwards."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
