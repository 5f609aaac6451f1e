"""A real ledger and ingestor for in-process dispatcher tests, with a clock the test moves."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from receiver.delivery import parse
from receiver.dispatch import Dispatcher
from receiver.handlers.registry import Handlers, Registry
from receiver.ingest import Ingestor
from receiver.settings import Settings
from receiver.store.connection import connect
from receiver.store.ledger import is_postgres_url, ledger_for
from receiver.store.records import IngestResult
from receiver.store.sqlite import SQLiteLedger
from tests.support import prediction_body

MODEL = "bytedance/seedance-v1-lite-t2v-480p"


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def no_resolve(host: str, _port: int) -> list[str]:
    raise OSError(f"the test resolver knows no host {host!r}")


class Harness:
    """Everything a dispatcher needs, on a fresh ledger of the settings' backend. Use inside a running event loop."""

    def __init__(
        self, settings: Settings, registry: Registry | Handlers, *, transport: httpx.AsyncBaseTransport | None = None
    ):
        self.settings = settings
        self.clock = FakeClock()
        self.ledger = ledger_for(settings)
        self.handlers = registry if isinstance(registry, Handlers) else registry.select(settings)
        self.ingestor = Ingestor(
            self.ledger, terminal_statuses=settings.terminal_statuses, route=self.handlers.route, clock=self.clock
        )
        self.http = httpx.AsyncClient(transport=transport or httpx.MockTransport(lambda _r: httpx.Response(404)))

    async def deliver(self, prediction_id: str, status: str = "completed", **fields: Any) -> IngestResult:
        body = prediction_body(prediction_id, status, **({"model": MODEL} | fields))
        return await self.ingestor.ingest(parse(body, webhook_id=f"{prediction_id}-{status}"))

    def dispatcher(self, **overrides: Any) -> Dispatcher:
        options: dict[str, Any] = {
            "http": self.http,
            "clock": self.clock,
            "resolve": no_resolve,
            "jitter": lambda: 0.5,
        }
        return Dispatcher(self.ledger, self.handlers, self.settings, **(options | overrides))

    def query(self, sql: str, *params: object) -> list[dict[str, Any]]:
        """Rows of ``sql`` (``?`` placeholders) read straight from the ledger's storage, whichever backend."""
        if is_postgres_url(self.settings.db):
            return postgres_query(self.settings.db, sql, *params)
        conn = connect(self.settings.db_path)
        try:
            return [dict(row) for row in conn.execute(sql, params)]
        finally:
            conn.close()

    def runs(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM handler_runs ORDER BY id")

    def attempts(self, run_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM run_attempts WHERE run_id = ? ORDER BY id", run_id)

    def sql(self, job: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``job`` in the SQLite ledger's writer (a test's way to set up or break state)."""
        assert isinstance(self.ledger, SQLiteLedger), "a SQLite-only test step"
        return self.ledger.writer.run_sync(job)


def postgres_query(url: str, sql: str, *params: object) -> list[dict[str, Any]]:
    """``query`` on a PostgreSQL ledger: the same SQL, its ``?`` placeholders as psycopg's."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute(sql.replace("?", "%s"), params).fetchall()  # type: ignore[arg-type]
    return [{k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items()} for row in rows]


@contextlib.asynccontextmanager
async def harness(settings: Settings, registry: Registry | Handlers, **options: Any) -> AsyncIterator[Harness]:
    h = Harness(settings, registry, **options)
    await h.ledger.open()
    try:
        yield h
    finally:
        await h.http.aclose()
        await h.ledger.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)
