"""Storage that refuses writes, under a real ``wavehook serve``: a full disk and a read-only ledger answer 503,
never 200; once the fault is gone, the retried deliveries are stored once each and the handlers run.

A full disk and a read-only file are faults of the SQLite ledger's file; a PostgreSQL server that is down,
read-only or stuck answers 503 in tests/receiver/store/postgres/test_writer.py and tests/receiver/http/.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fault.provider import deliveries_of, submit_tasks, wait_settled
from tests.fault.storage import fill, immutable, require_immutable, small_disk
from tests.integration.receiver_client import Delivery, burst, post, query, serve
from tests.support import Process, prediction_body, wait_for

pytestmark = pytest.mark.fault

TASKS = 12


def test_a_full_disk_answers_503_never_200_and_the_retries_are_stored_once(tmp_path: Path) -> None:
    """With the ledger on a tmpfs filled to the last block, every delivery answers 503 and /readyz 503 while
    /healthz stays 200; once space is freed, the same deliveries are stored, each once and as new."""
    disk = tmp_path / "disk"
    db = disk / "wavehook.db"
    deliveries = [Delivery(f"full-{n}", prediction_body(f"p-full-{n}")) for n in range(20)]
    with small_disk(disk), serve(tmp_path, env={"WAVEHOOK_DB": str(db)}) as server, httpx.Client(timeout=10) as client:
        assert post(client, server.url, Delivery("before", prediction_body("p-before"))).status_code == 200
        filler = fill(disk)

        assert burst(server.url, deliveries, threads=8) == [503] * len(deliveries)
        refused = post(client, server.url, deliveries[0])
        assert (refused.status_code, refused.json()["reason"]) == (503, "storage_unavailable")
        assert client.get(server.url + "/readyz").status_code == 503
        assert client.get(server.url + "/healthz").status_code == 200

        filler.unlink()
        wait_for(lambda: client.get(server.url + "/readyz").status_code == 200, timeout=10, what="/readyz 200")
        assert burst(server.url, deliveries, threads=8) == [200] * len(deliveries)
        stored = query(db, "SELECT webhook_id, duplicates FROM events WHERE webhook_id LIKE 'full-%'")
    # Not one of them was stored while the disk was full: each retry was new, none a duplicate.
    assert sorted(stored) == sorted((d.webhook_id, 0) for d in deliveries)


def test_a_read_only_ledger_answers_503_while_the_sandbox_retries_then_each_task_is_stored_once(
    tmp_path: Path, serve_factory: Callable[..., Process], sandbox_factory: Callable[..., Process]
) -> None:
    """With the ledger and its WAL immutable (writes fail even for root), the sandbox's deliveries are
    answered 503 and retried; made writable again, each task is accepted once, stored once, and its
    handler run succeeds: the dispatcher outlived the fault too."""
    require_immutable(tmp_path)
    receiver = serve_factory(env={"WAVEHOOK_DOWNLOAD": "false"})
    sandbox = sandbox_factory(retry_initial=0.05, retry_max=0.3)
    db: Path = receiver.db  # type: ignore[attr-defined]
    with httpx.Client(timeout=10) as client:
        assert post(client, receiver.url, Delivery("before", prediction_body("p-before"))).status_code == 200  # type: ignore[attr-defined]
        wait_for(lambda: runs(db) == [("log", "succeeded", 1)], timeout=20, what="the first run, before the fault")
        with immutable(db, db.with_name(db.name + "-wal")):
            ids = submit_tasks(sandbox, f"{receiver.url}/webhooks/wavespeed", TASKS)  # type: ignore[attr-defined]

            def refused_twice() -> bool:
                counts = collections.Counter(r["task_id"] for r in deliveries_of(sandbox) if r["outcome"] == "refused")
                return len(counts) == TASKS and min(counts.values()) >= 2

            wait_for(refused_twice, timeout=30, what="every task's delivery refused twice")
            assert client.get(receiver.url + "/readyz").status_code == 503  # type: ignore[attr-defined]
            during = deliveries_of(sandbox)
        wait_settled(sandbox)
    assert {(r["outcome"], r["http_status"]) for r in during} == {("refused", 503)}
    assert {json.loads(r["error"])["reason"] for r in during} == {"storage_unavailable"}
    after = deliveries_of(sandbox)
    accepted = collections.Counter(r["task_id"] for r in after if r["outcome"] == "accepted")
    assert accepted == dict.fromkeys(ids, 1)
    assert not [r for r in after if r["outcome"] not in {"refused", "accepted"}]
    stored = query(db, "SELECT webhook_id, duplicates FROM events WHERE webhook_id != 'before'")
    assert sorted(stored) == sorted((task, 0) for task in ids)
    wanted = [("log", "succeeded", TASKS + 1)]
    wait_for(lambda: runs(db) == wanted, timeout=20, what="one succeeded log run per prediction")


def runs(db: Path) -> list[tuple[Any, ...]]:
    return query(db, "SELECT handler, state, count(*) FROM handler_runs GROUP BY 1, 2")
