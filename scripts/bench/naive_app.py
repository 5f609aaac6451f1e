"""Target (b): the receiver a careful user would write without group commit.

It verifies the v3 signature and the timestamp, parses the JSON, inserts the event with sqlite-utils and
commits, per request, in WAL mode with ``synchronous=FULL``, and answers only after the commit. The blocking
database call runs in the threadpool (not on the event loop), one at a time behind a lock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
from typing import Any

from sqlite_utils import Database
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOLERANCE = 300


def _verified(request: Request, body: bytes, key: bytes) -> bool:
    webhook_id = request.headers.get("webhook-id", "")
    timestamp = request.headers.get("webhook-timestamp", "")
    signature = request.headers.get("webhook-signature", "")
    if not (webhook_id and timestamp.isdigit() and signature.startswith("v3,")):
        return False
    if abs(time.time() - int(timestamp)) > TOLERANCE:
        return False
    expected = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature[3:])


async def event_row(request: Request, key: bytes) -> dict[str, Any] | Response:
    """What both naive receivers do before they store: verify, parse, check; the row to store, or the answer
    that refuses the request."""
    body = await request.body()
    if not _verified(request, body, key):
        return JSONResponse({"error": "bad signature"}, status_code=401)
    try:
        data = json.loads(body)
    except ValueError:
        return JSONResponse({"error": "not JSON"}, status_code=400)
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return JSONResponse({"error": "not a prediction"}, status_code=400)
    return {
        "webhook_id": request.headers["webhook-id"],
        "prediction_id": data["id"],
        "status": data.get("status"),
        "model": data.get("model"),
        "received_at": time.time(),
        "body": body.decode(),
    }


def create_app() -> Starlette:
    key = os.environ["BENCH_SECRET"].removeprefix("whsec_").encode()
    db = Database(sqlite3.connect(os.environ["BENCH_DB"], check_same_thread=False))
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    events = db.table("events")
    if not events.exists():
        db.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, webhook_id TEXT UNIQUE, prediction_id TEXT, "
            "status TEXT, model TEXT, received_at REAL, body TEXT)"
        )
    lock = threading.Lock()

    def store(row: dict[str, Any]) -> None:
        with lock:
            events.insert(row, ignore=True)  # one transaction, committed, per request

    async def receive(request: Request) -> Response:
        row = await event_row(request, key)
        if isinstance(row, Response):
            return row
        await run_in_threadpool(store, row)
        return JSONResponse({"received": True})

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route("/webhooks/wavespeed", receive, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    )
