"""``--answer-delay``: the sandbox's API calls are answered after the delay, side by side; its own routes at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from tests.sandbox.conftest import AUTH, T2V
from tests.support import Process

DELAY = 0.4


async def _timed(client: httpx.AsyncClient, method: str, path: str, **kwargs: object) -> tuple[int, float]:
    started = time.perf_counter()
    response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
    return response.status_code, time.perf_counter() - started


@pytest.mark.integration
def test_api_calls_wait_the_answer_delay_concurrently_and_other_routes_do_not(
    sandbox_factory: Callable[..., Process],
) -> None:
    """With --answer-delay 0.4, eight submits sent at once each take at least 0.4 s yet all end well before
    eight delays; a result lookup waits too; /healthz and /_sandbox/status answer without the delay."""
    sandbox = sandbox_factory(answer_delay=DELAY)

    async def measure() -> tuple[list[tuple[int, float]], float, list[tuple[int, float]]]:
        async with httpx.AsyncClient(base_url=sandbox.url, headers=AUTH, timeout=10) as client:  # type: ignore[attr-defined]
            await client.get("/healthz")  # the connection pool warmed up
            began = time.perf_counter()
            submits = await asyncio.gather(
                *(_timed(client, "POST", f"/api/v3/{T2V}", json={"prompt": f"fox {n}"}) for n in range(8))
            )
            together = time.perf_counter() - began
            others = [
                await _timed(client, "GET", "/healthz"),
                await _timed(client, "GET", "/_sandbox/status"),
                await _timed(client, "GET", "/api/v3/predictions/nope/result"),
            ]
            return submits, together, others

    submits, together, others = asyncio.run(measure())
    assert [status for status, _ in submits] == [200] * 8
    assert min(seconds for _, seconds in submits) >= DELAY
    assert together < 3 * DELAY, together  # side by side: eight in a row would take 3.2 s
    (health, health_s), (status, status_s), (missing, missing_s) = others
    assert (health, status, missing) == (200, 200, 404)
    assert max(health_s, status_s) < DELAY, others
    assert missing_s >= DELAY
