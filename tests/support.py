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
from typing import Any, NoReturn

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


def http_responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The HTTP/1.1 responses in ``raw``, in order: status code, headers (names lower-case), body (as long as its
    content-length says)."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode().split("\r\n")
        headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
        length = int(headers.get("content-length", "0"))
        found.append((int(status_line.split()[1]), headers, rest[:length]))
        raw = rest[length:]
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_unavailable(reason: str) -> NoReturn:
    """Skip with the reason outside CI; under CI a server the suite needs and cannot start is a failure."""
    import pytest  # here: the benchmarks import this module where pytest is not installed

    if os.environ.get("CI"):
        pytest.fail(f"CI: {reason}")
    pytest.skip(reason)


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


class Row(tuple):  # type: ignore[type-arg]
    """A row read by index or by column name, as ``sqlite3.Row`` is (``dict(row)`` works too)."""

    _names: tuple[str, ...]

    def __new__(cls, values: tuple[Any, ...], names: tuple[str, ...]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names.index(key))
        return tuple.__getitem__(self, key)

    def keys(self) -> tuple[str, ...]:
        return self._names


class _PostgresResult:
    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Row]:
        return self._rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)


class _PostgresDirect:
    """A PostgreSQL ledger through the SQLite calls tests make: ``?`` placeholders, autocommit, rows as Row."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._conn = psycopg.connect(url, autocommit=True)

    def execute(self, sql: str, params: Any = ()) -> _PostgresResult:
        cur = self._conn.execute(sql.replace("?", "%s"), tuple(params))  # type: ignore[arg-type]
        if cur.description is None:
            return _PostgresResult([], cur.rowcount)
        names = tuple(column.name for column in cur.description)
        rows = [Row(tuple(bytes(v) if isinstance(v, memoryview) else v for v in r), names) for r in cur.fetchall()]
        return _PostgresResult(rows, cur.rowcount)

    def close(self) -> None:
        self._conn.close()

    def __del__(self) -> None:  # tests drop it as they drop a sqlite3 connection: close, not warn
        self._conn.close()

    def __enter__(self) -> _PostgresDirect:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def is_url(db: str | Path) -> bool:
    """Whether a ledger location is a PostgreSQL URL (else a SQLite file)."""
    return str(db).startswith(("postgresql://", "postgres://"))


def direct(db: str | Path) -> Any:
    """A direct connection to a ledger's storage, whichever backend ``db`` names (a SQLite path or a
    PostgreSQL URL), for a test to read what was stored or to prepare a state: SQL with ``?`` placeholders."""
    if is_url(db):
        return _PostgresDirect(str(db))
    from receiver.store.connection import connect

    return connect(Path(db))


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
