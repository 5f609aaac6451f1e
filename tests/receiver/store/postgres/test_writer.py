"""Group commit on PostgreSQL: concurrent jobs share transactions, each caller answered after its commit; a job
that raises fails alone; a server that is down, read-only or stuck fails the group with StorageUnavailable
(503), never another error; the pool reconnects by itself once the server is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, ClassVar

import psycopg
import pytest

from receiver.errors import StorageUnavailable
from receiver.store.postgres import writer as writer_module
from receiver.store.postgres.connection import Conn, fetch_all, open_pool
from receiver.store.postgres.writer import Batched, GroupWriter
from tests import postgres

pytestmark = pytest.mark.anyio
TIMEOUT_MS = 1500


@pytest.fixture(scope="module")
def own_server(postgres_server: postgres.Cluster) -> Iterator[postgres.Cluster]:
    """A server of this module's own, stopped and restarted by its tests (the shared one stays up)."""
    with postgres.cluster() as server:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS items (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        yield server


@pytest.fixture
async def writer(own_server: postgres.Cluster) -> AsyncIterator[GroupWriter]:
    if not own_server.running():
        own_server.start()
    with psycopg.connect(own_server.url(), autocommit=True) as conn:
        conn.execute("TRUNCATE items")
    pool = open_pool(own_server.url(), max_size=6, timeout_ms=TIMEOUT_MS)
    await pool.open(wait=True)
    made = GroupWriter(pool, own_server.url())
    try:
        yield made
    finally:
        await made.close()
        await pool.close()


def put(key: str, value: str = "v") -> Any:
    async def job(conn: Conn) -> str:
        await conn.execute("INSERT INTO items (key, value) VALUES (%s, %s)", (key, value))
        return key

    return job


class Put(Batched):
    """``put`` as a batched job: neighbouring ones insert in one statement; a key starting with ``refused``
    is answered with an exception and writes nothing."""

    statements: ClassVar[list[int]] = []  # the size of each shared statement, in order

    def __init__(self, key: str) -> None:
        self.key = key

    @classmethod
    async def run_batch(cls, conn: Conn, jobs: Sequence[Any]) -> list[Any]:
        cls.statements.append(len(jobs))
        keys = [job.key for job in jobs if not job.key.startswith("refused")]
        await conn.execute("INSERT INTO items (key, value) SELECT k, 'v' FROM unnest(%s::text[]) AS k", (keys,))
        return [ValueError(f"no {job.key}") if job.key.startswith("refused") else job.key for job in jobs]


def committed(server: postgres.Cluster) -> set[str]:
    with psycopg.connect(server.url()) as conn:
        return {row[0] for row in conn.execute("SELECT key FROM items")}


async def test_concurrent_jobs_share_commits_and_each_answer_follows_its_commit(
    writer: GroupWriter, own_server: postgres.Cluster
) -> None:
    """200 concurrent jobs take far fewer commits than jobs, and each job's row is visible to another
    connection by the time its caller is answered."""
    seen_missing: list[str] = []

    async def one(key: str) -> None:
        await writer.run(put(key))
        async with await psycopg.AsyncConnection.connect(own_server.url()) as other:
            rows = await (await other.execute("SELECT 1 FROM items WHERE key = %s", (key,))).fetchall()
            if not rows:
                seen_missing.append(key)

    await asyncio.gather(*(one(f"k{n}") for n in range(200)))
    assert seen_missing == []
    assert writer.jobs == 200
    assert writer.commits < 100, writer.commits
    assert len(committed(own_server)) == 200


async def test_a_caller_that_goes_away_is_committed_all_the_same(
    writer: GroupWriter, own_server: postgres.Cluster
) -> None:
    """Callers cancelled while they wait (a client hanging up) neither lose their job nor disturb the others:
    every row is committed, and the caller still waiting gets its answer."""
    started = asyncio.Event()

    async def slow(conn: Conn) -> str:
        started.set()
        await conn.execute("SELECT pg_sleep(0.3)")
        await conn.execute("INSERT INTO items (key, value) VALUES ('slow', 'v')")
        return "slow"

    in_flight = asyncio.ensure_future(writer.run(slow))
    await started.wait()  # its group is in flight: the next jobs wait for it
    abandoned = [asyncio.ensure_future(writer.run(put(f"gone{n}"))) for n in range(3)]
    kept = asyncio.ensure_future(writer.run(put("kept")))
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in [in_flight, *abandoned, kept])
    in_flight.cancel()
    for task in abandoned:
        task.cancel()
    assert await kept == "kept"
    assert all(task.cancelled() for task in [in_flight, *abandoned])
    await writer.close()  # waits for the groups in flight
    assert committed(own_server) == {"slow", "gone0", "gone1", "gone2", "kept"}


async def test_a_job_that_raises_fails_alone(writer: GroupWriter, own_server: postgres.Cluster) -> None:
    """A job raising (here a unique-key violation) gets its own error; the others in its group commit."""
    await writer.run(put("taken"))
    results = await asyncio.gather(
        writer.run(put("a")), writer.run(put("taken")), writer.run(put("b")), return_exceptions=True
    )
    assert results[0] == "a"
    assert results[2] == "b"
    assert isinstance(results[1], psycopg.errors.UniqueViolation)
    assert committed(own_server) == {"taken", "a", "b"}


async def test_batched_jobs_share_a_statement_and_a_refusal_fails_alone(
    writer: GroupWriter, own_server: postgres.Cluster
) -> None:
    """Neighbouring jobs of one ``Batched`` kind go out as one statement; a job answered with an exception
    (refused) gets it, and the rest of its statement commits without being run again."""
    Put.statements = []
    keys = [f"b{n}" for n in range(30)] + ["refused-1"]
    seen_missing: list[str] = []

    async def one(key: str) -> str:
        answer = await writer.run(Put(key))
        # A shared statement is its own transaction: answered only once it is committed.
        async with await psycopg.AsyncConnection.connect(own_server.url()) as other:
            if not await (await other.execute("SELECT 1 FROM items WHERE key = %s", (key,))).fetchall():
                seen_missing.append(key)
        return str(answer)

    results = await asyncio.gather(*(one(key) for key in keys), return_exceptions=True)
    assert seen_missing == []
    assert results[:30] == keys[:30]
    assert isinstance(results[30], ValueError)
    assert sum(Put.statements) == 31, "no job ran twice"
    assert len(Put.statements) < 31, Put.statements
    assert committed(own_server) == set(keys[:30])


async def test_a_shared_statement_that_fails_is_run_again_one_job_at_a_time(
    writer: GroupWriter, own_server: postgres.Cluster
) -> None:
    """When a shared statement raises (one job's row breaks a constraint), nothing of it is committed; its
    jobs run again one statement each, in a new transaction with the plain jobs of the group, so only the
    culprit fails and every other job (batched or not) commits once."""
    await writer.run(put("taken"))
    Put.statements = []
    results = await asyncio.gather(
        writer.run(Put("x1")),
        writer.run(put("plain")),
        writer.run(Put("taken")),
        writer.run(Put("x2")),
        return_exceptions=True,
    )
    assert (results[0], results[1], results[3]) == ("x1", "plain", "x2")
    assert isinstance(results[2], psycopg.errors.UniqueViolation)
    # x1 alone (the plain job splits the run), then taken + x2 together, which fails; then one by one.
    assert Put.statements[:2] == [1, 2], Put.statements
    assert set(Put.statements[2:]) == {1}, Put.statements
    assert committed(own_server) == {"taken", "x1", "plain", "x2"}


async def test_groups_that_follow_each_other_keep_their_connection_a_while(
    writer: GroupWriter, own_server: postgres.Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group that arrives while another is in flight goes out on the same connection, not through the pool
    again; after ``_HOLD_GROUPS`` groups the connection goes back and the next group asks the pool anew."""
    monkeypatch.setattr(writer_module, "_HOLD_GROUPS", 2)

    def slow(key: str) -> Any:
        async def job(conn: Conn) -> int:
            cur = await conn.execute("SELECT pg_backend_pid() AS pid FROM pg_sleep(0.2)")
            row = await cur.fetchone()
            await conn.execute("INSERT INTO items (key, value) VALUES (%s, 'v')", (key,))
            assert row is not None
            return int(row["pid"])

        return job

    def requests() -> int:
        return writer._pool.get_stats().get("requests_num", 0)

    before = requests()
    first = asyncio.create_task(writer.run(slow("a")))
    await asyncio.sleep(0.1)  # a is in flight: b waits for it, then follows on its connection
    second = asyncio.create_task(writer.run(slow("b")))
    await asyncio.sleep(0.2)  # a is committed, b in flight: c follows it, but the connection has served 2
    third = asyncio.create_task(writer.run(slow("c")))
    pids = await asyncio.gather(first, second, third)
    assert pids[0] == pids[1]
    assert requests() - before == 2  # a and b on one connection from the pool, c on another request
    assert committed(own_server) == {"a", "b", "c"}


async def test_server_down_is_503_without_the_password_and_the_pool_recovers(
    writer: GroupWriter, own_server: postgres.Cluster
) -> None:
    """With the server stopped every write fails with StorageUnavailable (the masked URL, never the
    password) within the timeout; once it is started again writes succeed with no restart of ours."""
    await writer.run(put("before"))
    own_server.stop("immediate")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StorageUnavailable) as refused:
        await writer.run(put("while-down"))
    assert loop.time() - started < TIMEOUT_MS / 1000 * 4
    assert own_server.password not in str(refused.value)
    assert "***" in str(refused.value)
    own_server.start()
    await _eventually(lambda: writer.run(put("after")))
    assert committed(own_server) == {"before", "after"}


async def test_read_only_server_is_503(writer: GroupWriter, own_server: postgres.Cluster) -> None:
    """A database switched to read-only (as a failed-over replica is) refuses with StorageUnavailable naming
    the read-only transaction; switched back, writes go through again."""
    url = own_server.url()
    postgres.make_read_only(url)
    try:
        with pytest.raises(StorageUnavailable, match="read-only"):
            await writer.run(put("ro"))
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SET default_transaction_read_only = off")
            admin.execute("ALTER DATABASE postgres RESET default_transaction_read_only")
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = 'postgres' AND pid <> pg_backend_pid()"
            )
    await _eventually(lambda: writer.run(put("rw")))
    assert committed(own_server) == {"rw"}


async def test_a_stuck_lock_times_out_as_503(writer: GroupWriter, own_server: postgres.Cluster) -> None:
    """A row locked by another session past the timeout makes the write a StorageUnavailable, on time."""
    await writer.run(put("hot"))
    with psycopg.connect(own_server.url()) as blocker:
        blocker.execute("SELECT 1 FROM items WHERE key = 'hot' FOR UPDATE")

        async def touch(conn: Conn) -> None:
            await conn.execute("UPDATE items SET value = 'x' WHERE key = 'hot'")

        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(StorageUnavailable, match="timeout"):
            await writer.run(touch)
        assert loop.time() - started < TIMEOUT_MS / 1000 * 4
        blocker.rollback()
    assert (await _rows(writer, "SELECT value FROM items WHERE key = 'hot'")) == [{"value": "v"}]


async def _rows(writer: GroupWriter, sql: str) -> list[dict[str, Any]]:
    async def read(conn: Conn) -> list[dict[str, Any]]:
        return await fetch_all(conn, sql)

    return await writer.run(read)


async def _eventually(call: Any, *, expect: type[BaseException] | None = None, within: float = 20.0) -> Any:
    """Repeat ``call`` until it succeeds (or, with ``expect``, until it raises that), for ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            result = await call()
        except StorageUnavailable:
            if expect is StorageUnavailable:
                raise
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        if expect is None or loop.time() > deadline:
            return result
        await asyncio.sleep(0.05)
