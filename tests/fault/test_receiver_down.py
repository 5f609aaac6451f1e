"""The receiver not running while the sandbox delivers: refused connections are retried until it comes up.

tests/integration/test_sandbox_chaos.py kills the receiver once mid-run, among other faults; here it is
down from the start, every task's first attempts are refused, and what counts is that each task is then
delivered, stored and handled exactly once.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fault.provider import deliveries_of, submit_tasks, wait_settled
from tests.integration.receiver_client import query
from tests.support import Process, free_port, wait_for

pytestmark = pytest.mark.fault

TASKS = 16
REFUSALS = 3


def test_deliveries_refused_while_the_receiver_is_down_are_each_stored_once_when_it_starts(
    serve_factory: Callable[..., Process], sandbox_factory: Callable[..., Process]
) -> None:
    """Every task's delivery is refused REFUSALS times with nothing listening; once ``wavehook serve`` starts
    on that port, each task is accepted once, stored as one event and its handler run succeeds once."""
    port = free_port()
    sandbox = sandbox_factory(retry_initial=0.05, retry_max=0.3)
    ids = submit_tasks(sandbox, f"http://127.0.0.1:{port}/webhooks/wavespeed", TASKS)

    def refused_enough() -> bool:
        errors = collections.Counter(r["task_id"] for r in deliveries_of(sandbox) if r["outcome"] == "error")
        return len(errors) == TASKS and min(errors.values()) >= REFUSALS

    wait_for(refused_enough, timeout=30, what=f"every task refused {REFUSALS} times")
    before = deliveries_of(sandbox)
    receiver = serve_factory(port=port, env={"WAVEHOOK_DOWNLOAD": "false"})
    wait_settled(sandbox)

    assert {r["outcome"] for r in before} == {"error"}
    assert all("ConnectError" in r["error"] for r in before)
    records = deliveries_of(sandbox)
    assert collections.Counter(r["task_id"] for r in records if r["outcome"] == "accepted") == dict.fromkeys(ids, 1)
    assert {r["outcome"] for r in records} == {"error", "accepted"}
    db: Path = receiver.db  # type: ignore[attr-defined]
    assert sorted(query(db, "SELECT webhook_id, duplicates FROM events")) == sorted((task, 0) for task in ids)
    wanted = [("log", "succeeded", TASKS)]
    wait_for(
        lambda: query(db, "SELECT handler, state, count(*) FROM handler_runs GROUP BY 1, 2") == wanted,
        timeout=20,
        what="one succeeded run per task",
    )
    twice = query(db, "SELECT run_id FROM run_attempts WHERE outcome = 'succeeded' GROUP BY 1 HAVING count(*) > 1")
    assert twice == []
