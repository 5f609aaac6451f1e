"""Group commit: answers after COMMIT, shared commits, job errors isolated, storage errors fail the group.

SQLite's own writer thread (PostgreSQL's group writer has its twin in tests/receiver/store/postgres/test_writer.py).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from receiver.errors import StorageUnavailable
from receiver.store.connection import connect
from receiver.store.writer import Writer


@pytest.fixture
def writer(db_path: Path) -> Iterator[Writer]:
    w = Writer(db_path, busy_timeout_ms=50)
    w.start()
    yield w
    w.stop()


def put(key: str) -> object:
    def job(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, 'v')", (key,))
        return key

    return job


def keys(db_path: Path) -> set[str]:
    conn = connect(db_path)
    try:
        return {r[0] for r in conn.execute("SELECT key FROM meta WHERE key LIKE 'k%'")}
    finally:
        conn.close()


def test_result_is_visible_to_another_connection_once_resolved(writer: Writer, db_path: Path) -> None:
    """When a job's future resolves, its write is committed: a separate connection sees it."""
    assert writer.run_sync(put("k1"), timeout=10) == "k1"  # type: ignore[arg-type]
    assert keys(db_path) == {"k1"}


def test_jobs_waiting_together_share_one_commit(writer: Writer, db_path: Path) -> None:
    """Jobs queued while a commit is under way are committed together, in one transaction."""
    started, release = threading.Event(), threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(10)

    first = writer.submit(slow)
    assert started.wait(10)
    waiting = [writer.submit(put(f"k{i}")) for i in range(20)]  # type: ignore[arg-type]
    release.set()
    first.result(10)
    assert [f.result(10) for f in waiting] == [f"k{i}" for i in range(20)]
    assert (writer.commits, writer.jobs) == (2, 21)
    assert len(keys(db_path)) == 20


def test_a_failing_job_rolls_back_alone(writer: Writer, db_path: Path) -> None:
    """A job that raises loses its own writes and gets its exception; its group's other jobs commit."""
    started, release = threading.Event(), threading.Event()
    writer.submit(lambda _conn: (started.set(), release.wait(10)))
    assert started.wait(10)

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k-bad', 'v')")
        raise LookupError("handler not registered")

    ok1, failing, ok2 = writer.submit(put("k1")), writer.submit(bad), writer.submit(put("k2"))  # type: ignore[arg-type]
    release.set()
    assert (ok1.result(10), ok2.result(10)) == ("k1", "k2")
    with pytest.raises(LookupError):
        failing.result(10)
    assert keys(db_path) == {"k1", "k2"}


def test_a_database_error_fails_the_whole_group_then_recovers(writer: Writer, db_path: Path) -> None:
    """An sqlite3 error fails every job of its group with StorageUnavailable, nothing of it stored; later jobs work."""
    started, release = threading.Event(), threading.Event()
    writer.submit(lambda _conn: (started.set(), release.wait(10)))
    assert started.wait(10)
    innocent = writer.submit(put("k1"))  # type: ignore[arg-type]
    broken = writer.submit(lambda conn: conn.execute("INSERT INTO no_such_table VALUES (1)"))
    release.set()
    for future in (innocent, broken):
        with pytest.raises(StorageUnavailable) as caught:
            future.result(10)
        assert caught.value.status == 503
    assert keys(db_path) == set()
    assert writer.run_sync(put("k2"), timeout=10) == "k2"  # type: ignore[arg-type]
    assert keys(db_path) == {"k2"}


def test_a_read_only_database_answers_storage_unavailable(writer: Writer, db_path: Path) -> None:
    """When SQLite refuses writes (read-only), every write fails with StorageUnavailable and nothing is stored."""
    writer.run_sync(lambda conn: conn.execute("PRAGMA query_only = ON"), timeout=10)
    for key in ("k1", "k2"):
        with pytest.raises(StorageUnavailable, match="readonly"):
            writer.run_sync(put(key), timeout=10)  # type: ignore[arg-type]
    assert keys(db_path) == set()


def test_a_locked_database_answers_storage_unavailable(writer: Writer, db_path: Path) -> None:
    """Another process holding the write lock past the busy timeout fails the write, which works once it is freed."""
    other = connect(db_path)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageUnavailable, match="locked"):
            writer.run_sync(put("k1"), timeout=10)  # type: ignore[arg-type]
        other.execute("ROLLBACK")
        writer.run_sync(put("k2"), timeout=10)  # type: ignore[arg-type]
    finally:
        other.close()
    assert keys(db_path) == {"k2"}


def test_an_unopenable_file_fails_writes_without_killing_the_writer(tmp_path: Path) -> None:
    """A ledger path that cannot be opened fails each write with StorageUnavailable; the thread keeps serving."""
    w = Writer(tmp_path, busy_timeout_ms=50)  # a directory is no database file
    w.start()
    try:
        for _ in range(2):
            with pytest.raises(StorageUnavailable, match="unable to open"):
                w.run_sync(lambda conn: conn.execute("SELECT 1"), timeout=10)
    finally:
        w.stop()


def test_stop_finishes_queued_jobs_and_refuses_new_ones(db_path: Path) -> None:
    """Jobs queued before stop() are committed; a job submitted afterwards is refused with a 503."""
    w = Writer(db_path)
    w.start()
    futures = [w.submit(put(f"k{i}")) for i in range(50)]  # type: ignore[arg-type]
    w.stop()
    assert all(f.result(0) for f in futures)
    assert len(keys(db_path)) == 50
    with pytest.raises(StorageUnavailable):
        w.submit(put("late"))  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_run_awaits_without_blocking_the_event_loop(writer: Writer) -> None:
    """``await writer.run(job)`` yields to the loop while the job runs in the writer thread."""
    import asyncio

    release = threading.Event()
    pending = asyncio.ensure_future(writer.run(lambda _conn: release.wait(10)))
    await asyncio.sleep(0)
    assert not pending.done()
    release.set()
    assert await pending is True


@pytest.mark.anyio
async def test_jobs_awaited_in_one_loop_turn_share_one_commit(writer: Writer, db_path: Path) -> None:
    """Jobs that callers await in the same turn of the event loop reach the writer together: one commit."""
    import asyncio

    before = writer.commits
    results = await asyncio.gather(*(writer.run(put(f"k{i}")) for i in range(20)))  # type: ignore[arg-type]
    assert results == [f"k{i}" for i in range(20)]
    assert writer.commits - before == 1
    assert len(keys(db_path)) == 20


@pytest.mark.anyio
async def test_awaited_jobs_fail_alone_or_with_their_group(writer: Writer, db_path: Path) -> None:
    """Through ``run``, a raising job gets its own exception and a storage error reaches every job of its group."""
    import asyncio

    def bad(_conn: sqlite3.Connection) -> None:
        raise LookupError("handler not registered")

    outcomes = await asyncio.gather(writer.run(put("k1")), writer.run(bad), return_exceptions=True)  # type: ignore[arg-type]
    assert outcomes[0] == "k1"
    assert isinstance(outcomes[1], LookupError)
    broken = await asyncio.gather(
        writer.run(put("k2")),  # type: ignore[arg-type]
        writer.run(lambda conn: conn.execute("INSERT INTO no_such_table VALUES (1)")),
        return_exceptions=True,
    )
    assert all(isinstance(outcome, StorageUnavailable) for outcome in broken)
    assert keys(db_path) == {"k1"}


@pytest.mark.anyio
async def test_run_after_stop_is_refused_and_a_cancelled_caller_still_commits(db_path: Path) -> None:
    """A job whose caller gave up is committed all the same; ``run`` after ``stop`` answers StorageUnavailable."""
    import asyncio

    w = Writer(db_path)
    w.start()
    release = threading.Event()
    blocker = asyncio.ensure_future(w.run(lambda _conn: release.wait(10)))
    await asyncio.sleep(0)
    abandoned = asyncio.ensure_future(w.run(put("k1")))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    abandoned.cancel()
    release.set()
    await blocker
    w.stop()
    assert keys(db_path) == {"k1"}
    with pytest.raises(StorageUnavailable):
        await w.run(put("late"))  # type: ignore[arg-type]


def test_several_failing_jobs_fail_alone_and_the_rest_commit_once(writer: Writer, db_path: Path) -> None:
    """Two raising jobs in one group each get their own exception; the others are committed once, in one commit."""
    started, release = threading.Event(), threading.Event()
    writer.submit(lambda _conn: (started.set(), release.wait(10)))
    assert started.wait(10)
    commits = writer.commits

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k-bad', 'v')")
        raise LookupError("handler not registered")

    futures = [writer.submit(put("k1")), writer.submit(bad), writer.submit(put("k2")), writer.submit(bad)]  # type: ignore[arg-type]
    release.set()
    assert [futures[0].result(10), futures[2].result(10)] == ["k1", "k2"]
    for failing in (futures[1], futures[3]):
        with pytest.raises(LookupError):
            failing.result(10)
    assert keys(db_path) == {"k1", "k2"}
    assert writer.commits - commits == 2  # the blocker's commit, then the group's
