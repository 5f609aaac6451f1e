"""``/healthz`` (the process answers) and ``/readyz`` (the database takes a write)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse

from receiver.errors import StorageUnavailable
from receiver.http.state import receiver_state


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def readyz(request: Request) -> JSONResponse:
    state = receiver_state(request.app)
    now = state.clock()
    wait = state.settings.busy_timeout_ms / 1000 + 1
    try:
        await asyncio.wait_for(state.ledger.probe_write(now=now), timeout=wait)
    except TimeoutError:
        raise StorageUnavailable(
            f"the database did not accept a write within {wait:.1f} s", reason="not_ready"
        ) from None
    except StorageUnavailable as exc:
        raise StorageUnavailable(exc.message, reason="not_ready") from None
    return JSONResponse({"ready": True})
