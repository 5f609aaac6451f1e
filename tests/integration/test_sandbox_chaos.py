"""200 tasks through a real sandbox and a real receiver, with duplicated, reordered and dropped deliveries and
the receiver killed (-9) and restarted mid-run: the sandbox's delivery log against the receiver's ledger, then
reconciliation closing what was dropped."""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.settings import Secret, Settings
from submitter import Submitter
from tests.support import Process, free_port, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.fault]

TASKS = 200
MODEL = "bytedance/seedance-v1-lite-t2v-480p"
QUIET = {"WAVEHOOK_DOWNLOAD": "false"}  # outputs on loopback are refused anyway: spare the receiver the tries


def delivery_log(sandbox: Process, after: int = 0) -> list[dict[str, Any]]:
    response = httpx.get(f"{sandbox.url}/_sandbox/deliveries", params={"after": after}, timeout=10)  # type: ignore[attr-defined]
    records: list[dict[str, Any]] = response.json()["deliveries"]
    return records


def ledger(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return [tuple(row) for row in conn.execute(sql)]
    finally:
        conn.close()


def submit_all(submitter: Submitter) -> list[str]:
    """Through the submitter, as a user's code would: each task is in the ledger (open) before its webhook."""
    return [str(submitter.submit(MODEL, {"prompt": f"task {n}"}).prediction_id) for n in range(TASKS)]


def test_every_delivered_event_is_stored_once_through_faults_and_a_crash(
    sandbox_factory: Callable[..., Process],
    serve_factory: Callable[..., Process],
    settings_factory: Callable[..., Settings],
) -> None:
    """Every event the receiver acknowledged is in the ledger exactly once, no status regressed, deliveries
    refused while the receiver was down were retried into the ledger, and dropped tasks stay open until one
    reconciliation pass closes exactly them."""
    port = free_port()
    receiver = serve_factory(port=port, env=QUIET)
    db: Path = receiver.db  # type: ignore[attr-defined]
    sandbox = sandbox_factory(
        faults="duplicate=0.3,stale_processing=0.1,drop=0.1",
        seed=20261121,
        queue_time=0.05,
        run_time=1.5,
        jitter=0.9,  # tasks end from 0.15 s to 2.85 s after submission: the crash lands mid-run
        retry_initial=0.05,
        retry_max=0.4,
    )
    settings = settings_factory(
        api_key=Secret("sandbox-key"),
        base_url=sandbox.url,  # type: ignore[attr-defined]
        public_url=receiver.url,  # type: ignore[attr-defined]
    )
    assert settings.db_path == db
    submitter = Submitter(settings)
    try:
        ids = submit_all(submitter)
        crashed_at = crash_and_restart(sandbox, receiver, lambda: serve_factory(port=port, env=QUIET))
        check_ledger(delivery_log(sandbox), crashed_at, db, ids)
        counts = submitter.reconcile(older_than=0)
    finally:
        submitter.close()
    dropped = {task for (task,) in ledger(db, "SELECT prediction_id FROM events WHERE source = 'reconcile'")}
    assert (counts.missed, counts.errors) == (len(dropped), 0)
    assert dropped == {r["task_id"] for r in delivery_log(sandbox) if r["outcome"] == "dropped"}
    assert ledger(db, "SELECT status, count(*) FROM predictions GROUP BY status") == [("completed", TASKS)]


def crash_and_restart(sandbox: Process, receiver: Process, restart: Callable[[], Process]) -> int:
    """kill -9 the receiver once a quarter of the tasks are delivered, restart it once a delivery has failed
    meanwhile, wait until the sandbox has settled; the delivery log's length at the crash."""

    def genuine_accepted() -> int:
        return sum(r["kind"] == "genuine" and r["outcome"] == "accepted" for r in delivery_log(sandbox))

    wait_for(lambda: genuine_accepted() >= TASKS // 4, timeout=30, what="a quarter of the tasks delivered")
    receiver.kill9()
    crashed_at = len(delivery_log(sandbox))
    wait_for(
        lambda: any(r["outcome"] == "error" for r in delivery_log(sandbox, crashed_at)),
        timeout=30,
        what="a delivery refused while the receiver is down",
    )
    restart()
    wait_for(
        lambda: httpx.get(f"{sandbox.url}/_sandbox/status").json()["busy"] == 0,  # type: ignore[attr-defined]
        timeout=60,
        what="every task ended and every delivery settled",
    )
    return crashed_at


def check_ledger(records: list[dict[str, Any]], crashed_at: int, db: Path, ids: list[str]) -> None:
    """The delivery log against the ledger: stored once, nothing regressed, the dropped still open."""
    assert {r["task_id"] for r in records} == set(ids)
    by_kind = collections.Counter(r["kind"] for r in records if r["outcome"] in {"accepted", "dropped"})
    assert 30 <= by_kind["duplicate"] <= 90, by_kind
    assert 5 <= by_kind["stale_processing"] <= 40, by_kind
    assert 5 <= by_kind["dropped"] <= 40, by_kind
    assert not [r for r in records if r["outcome"] == "gave_up"]
    down = [r for r in records[crashed_at:] if r["outcome"] == "error"]
    assert down, "no delivery was attempted while the receiver was down"

    # Every acknowledged event is stored, once; nothing else is.
    acknowledged = {(r["webhook_id"], r["body_sha256"]) for r in records if r["outcome"] == "accepted"}
    events = ledger(db, "SELECT webhook_id, body_sha256 FROM events")
    assert len(events) == len(set(events))
    assert set(events) == acknowledged
    # The attempts refused during the crash were retried into the ledger.
    assert {(r["webhook_id"], r["body_sha256"]) for r in down} <= acknowledged
    # Each acknowledged repeat of a stored event was counted as a duplicate, not stored again.
    repeats = sum(r["outcome"] == "accepted" for r in records) - len(acknowledged)
    (counted,) = ledger(db, "SELECT sum(duplicates) FROM events")[0]
    assert counted >= repeats

    # No status regressed: every task whose final event was delivered ends completed, stale processing unapplied.
    finals = {r["task_id"] for r in records if r["kind"] == "genuine" and r["outcome"] == "accepted"}
    statuses = dict(ledger(db, "SELECT id, status FROM predictions"))
    assert {statuses[task] for task in finals} == {"completed"}
    stale = ledger(db, "SELECT applied FROM events WHERE status = 'processing'")
    assert len(stale) == by_kind["stale_processing"]
    assert {applied for (applied,) in stale} == {0}

    # Dropped tasks are in the ledger, as the submitter recorded them, and still open.
    dropped = {r["task_id"] for r in records if r["outcome"] == "dropped"}
    assert dropped.isdisjoint(finals)
    assert {statuses[task] for task in dropped} == {"created"}
    assert len(finals) + len(dropped) == TASKS
