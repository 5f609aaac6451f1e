"""The run SQL: atomic claims across connections, lease renewal by owner, release, replay of finished runs only."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from receiver.store import runs as store
from receiver.store.connection import connect
from receiver.store.events import enqueue_runs
from receiver.store.records import ClaimedRun, RunEnd

NOW = 1_800_000_000.0
CLAIM = {"handlers": ["a", "b"], "max_attempts": {"a": 3, "b": 3}, "lease_seconds": 30.0}


def _enqueue(conn: sqlite3.Connection, count: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    for n in range(count):
        enqueue_runs(conn, f"p{n}", "completed", ("a", "b"), now=NOW)
    conn.execute("COMMIT")


def _in_transaction(conn: sqlite3.Connection, owner: str, limit: int) -> list[ClaimedRun]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        return store.claim(conn, owner=owner, now=NOW, limit=limit, **CLAIM)  # type: ignore[arg-type]
    finally:
        conn.execute("COMMIT")


def test_concurrent_claims_never_share_a_run(db_path: Path) -> None:
    """Four connections claiming at once in small batches end up with disjoint sets covering every run."""
    setup = connect(db_path)
    _enqueue(setup, 50)
    claimed: dict[str, list[int]] = {}
    barrier = threading.Barrier(4)

    def claimer(owner: str) -> None:
        conn = connect(db_path, busy_timeout_ms=10_000)
        mine: list[int] = []
        barrier.wait()
        while batch := _in_transaction(conn, owner, 3):
            mine += [run.id for run in batch]
        claimed[owner] = mine
        conn.close()

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    every = [run_id for ids in claimed.values() for run_id in ids]
    assert len(every) == len(set(every)) == 100
    owners = dict(setup.execute("SELECT id, lease_owner FROM handler_runs").fetchall())
    assert all(owners[run_id] == owner for owner, ids in claimed.items() for run_id in ids)
    setup.close()


def test_only_the_owner_renews_and_release_gives_the_attempt_back(conn: sqlite3.Connection) -> None:
    """Renewal touches only the owner's runs; a released run is pending again without the attempt counted."""
    _enqueue(conn, 1)
    (first, second) = _in_transaction(conn, "w1", 10)
    assert store.renew(conn, owner="w2", run_ids=[first.id], lease_until=NOW + 99) == set()
    assert store.renew(conn, owner="w1", run_ids=[first.id, second.id], lease_until=NOW + 99) == {first.id, second.id}
    assert store.release(conn, [first], owner="w2", now=NOW) == 0
    assert store.release(conn, [first], owner="w1", now=NOW) == 1
    row = conn.execute("SELECT state, attempts, lease_owner FROM handler_runs WHERE id = ?", (first.id,)).fetchone()
    assert tuple(row) == ("pending", 0, None)
    outcomes = conn.execute("SELECT outcome FROM run_attempts WHERE run_id = ?", (first.id,)).fetchall()
    assert [r[0] for r in outcomes] == ["released"]


def test_replay_touches_finished_runs_only(conn: sqlite3.Connection) -> None:
    """Dead and succeeded runs become pending with fresh attempts; pending and running ones are left alone."""
    _enqueue(conn, 2)
    runs = _in_transaction(conn, "w1", 3)
    store.finish(conn, runs[0], RunEnd(state="dead", outcome="failed", error="x"), owner="w1", now=NOW)
    store.finish(conn, runs[1], RunEnd(state="succeeded", outcome="succeeded"), owner="w1", now=NOW)
    every = [row["id"] for row in store.select_runs(conn)]
    assert store.replay(conn, every, now=NOW + 5) == sorted([runs[0].id, runs[1].id])
    states = dict(conn.execute("SELECT id, state FROM handler_runs").fetchall())
    assert states[runs[2].id] == "running"
    assert sorted(states.values()) == ["pending", "pending", "pending", "running"]
    replayed = store.get_run(conn, runs[0].id)
    assert replayed is not None
    assert (replayed["attempts"], replayed["replays"], replayed["next_at"]) == (0, 1, NOW + 5)
