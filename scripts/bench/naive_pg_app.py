"""Target (d): the PostgreSQL receiver a careful user would write without group commit.

It verifies the v3 signature and the timestamp, parses the JSON, and inserts the event in its own
transaction, committed per request (``synchronous_commit`` on, the server's default), through an async
psycopg connection pool; it answers only after the commit. Nothing is shared between requests but the pool.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import psycopg
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.naive_app import event_row

POOL_SIZE = 16


def create_app() -> Starlette:
    key = os.environ["BENCH_SECRET"].removeprefix("whsec_").encode()
    url = os.environ["BENCH_DB"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS events (id BIGSERIAL PRIMARY KEY, webhook_id TEXT UNIQUE, "
            "prediction_id TEXT, status TEXT, model TEXT, received_at DOUBLE PRECISION, body TEXT)"
        )
    pool = AsyncConnectionPool(url, min_size=POOL_SIZE, max_size=POOL_SIZE, open=False)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await pool.open(wait=True)
        try:
            yield
        finally:
            await pool.close()

    async def receive(request: Request) -> Response:
        row = await event_row(request, key)
        if isinstance(row, Response):
            return row
        async with pool.connection() as conn:  # commits when the block ends, before the answer
            await conn.execute(
                "INSERT INTO events (webhook_id, prediction_id, status, model, received_at, body) "
                "VALUES (%(webhook_id)s, %(prediction_id)s, %(status)s, %(model)s, %(received_at)s, %(body)s) "
                "ON CONFLICT (webhook_id) DO NOTHING",
                row,
            )
        return JSONResponse({"received": True})

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route("/webhooks/wavespeed", receive, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
    )
