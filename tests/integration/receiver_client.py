"""A client of a real ``wavehook serve`` for the receiver's integration and fault tests: signed posts, bursts,
raw sockets, and reading the ledger file the server writes."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import SECRET, serve_process
from tests.support import Process, direct, free_port, is_url, running, signed_headers

PATH = "/webhooks/wavespeed"


@dataclasses.dataclass(frozen=True)
class Delivery:
    webhook_id: str
    body: bytes


@dataclasses.dataclass
class Server:
    process: Process
    url: str
    port: int
    db: Path


@contextlib.contextmanager
def serve(tmp: Path, *, workers: int = 1, env: dict[str, str] | None = None) -> Iterator[Server]:
    """A real ``wavehook serve`` on a free loopback port, its ledger and log in ``tmp``; stopped afterwards."""
    port = free_port()
    # The bodies name outputs on a host that does not exist: fetching them is not what these tests are about.
    process = serve_process(tmp, port, workers=workers, env={"WAVEHOOK_DOWNLOAD": "false", **(env or {})})
    with running(process, f"http://127.0.0.1:{port}/healthz"):
        db = process.env["WAVEHOOK_DB"]
        yield Server(process, f"http://127.0.0.1:{port}", port, db if is_url(db) else Path(db))  # type: ignore[arg-type]


def post(client: httpx.Client, url: str, delivery: Delivery, *, secret: str = SECRET, **kw: Any) -> httpx.Response:
    headers = signed_headers(secret, delivery.body, webhook_id=delivery.webhook_id, **kw)
    return client.post(url + PATH, content=delivery.body, headers=headers)


def burst(
    url: str,
    deliveries: Sequence[Delivery],
    *,
    threads: int = 16,
    timeout: float = 30.0,
    on_result: Callable[[Delivery, Any], None] | None = None,
) -> list[Any]:
    """Post every delivery at once from ``threads`` clients; each result is a status code or the exception raised.

    ``on_result`` is called from the sending thread as each answer (or failure) arrives.
    """
    barrier = threading.Barrier(min(threads, len(deliveries)))
    local = threading.local()

    def send(delivery: Delivery) -> Any:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=timeout)
            clients.append(client)
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(5)
        result: Any
        try:
            result = post(client, url, delivery).status_code
        except httpx.HTTPError as exc:
            result = exc
        if on_result is not None:
            on_result(delivery, result)
        return result

    clients: list[httpx.Client] = []
    try:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            return list(pool.map(send, deliveries))
    finally:
        for client in clients:
            client.close()


def query(db: Path | str, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    """Rows from the ledger, through a connection of our own (as any other process would read it)."""
    if is_url(db):
        with direct(db) as pg:
            return [tuple(row) for row in pg.execute(sql, params)]
    conn = sqlite3.connect(db, timeout=10)
    try:
        return [tuple(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def raw_exchange(port: int, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection, then read until the server closes it; returns what it sent back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received
