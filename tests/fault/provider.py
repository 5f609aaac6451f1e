"""The sandbox as the provider in the fault tests: tasks submitted straight to its API, its delivery log."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import Process, wait_for

MODEL = "bytedance/seedance-v1-lite-t2v-480p"


def submit_tasks(sandbox: Process, webhook: str, count: int) -> list[str]:
    """``count`` tasks submitted to the sandbox's API, each naming ``webhook``; their ids."""
    with httpx.Client(base_url=sandbox.url, headers={"Authorization": "Bearer k"}, timeout=10) as client:  # type: ignore[attr-defined]
        answers = [
            client.post(f"/api/v3/{MODEL}", params={"webhook": webhook}, json={"prompt": f"task {n}"})
            for n in range(count)
        ]
    return [answer.json()["data"]["id"] for answer in answers]


def deliveries_of(sandbox: Process) -> list[dict[str, Any]]:
    """Every delivery attempt the sandbox made so far (see sandbox/deliverylog.py)."""
    url = f"{sandbox.url}/_sandbox/deliveries"  # type: ignore[attr-defined]
    records: list[dict[str, Any]] = httpx.get(url, timeout=10).json()["deliveries"]
    return records


def wait_settled(sandbox: Process, timeout: float = 30.0) -> None:
    """Until every task has ended and every delivery is accepted or given up."""
    wait_for(
        lambda: httpx.get(f"{sandbox.url}/_sandbox/status", timeout=10).json()["busy"] == 0,  # type: ignore[attr-defined]
        timeout=timeout,
        what="every delivery settled",
    )
