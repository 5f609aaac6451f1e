"""A crash loop: a real ``wavehook serve`` with its in-process dispatcher, killed -9 ten times at random
moments under continuous signed load and restarted each time on the same port and ledger.

tests/fault/test_receiver_crash.py kills the server once in a burst and checks the events; this one checks
the whole promise across many crashes: every acknowledged delivery is stored once, and every handler run
succeeds exactly once, its effect executed again only where an attempt was recorded as lost. On the SQLite
ledger; on PostgreSQL, receivers and a worker killed -9 (and the server restarted) are tests/fault/test_scale_out.py.
"""

from __future__ import annotations

import collections
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fault.signed_load import SignedLoad
from tests.integration.dispatch_support import dispatch_env, effects, query
from tests.support import Process, free_port, wait_for

pytestmark = pytest.mark.fault

KILLS = 10


def crash_loop(start: Callable[[], Process], load: SignedLoad, rng: random.Random) -> list[int]:
    """Kill the server's process group KILLS times, each after a random share of load, restarting it each
    time; the number of deliveries acknowledged by each server before its kill."""
    server = start()
    per_server = []
    for _ in range(KILLS):
        load.wait_more(rng.randint(5, 120))
        server.kill9()
        per_server.append(load.acknowledged() - sum(per_server))
        server = start()
    load.wait_more(50)  # the last server, never killed, takes load too
    return per_server


def test_ten_kills_under_load_lose_and_double_nothing(tmp_path: Path, serve_factory: Callable[..., Process]) -> None:
    """After ten kill -9s under signed load: every delivery answered 200 is one event; every final
    prediction has each of its handler runs succeeded exactly once, with one succeeded attempt; each run's
    effect happened at least once, and more than once only as often as one of its attempts was lost."""
    seed = random.SystemRandom().randrange(2**32)
    print(f"crash loop seed: {seed}")  # shown with a failure: it draws when each kill comes
    port = free_port()
    env = dispatch_env(tmp_path, WAVEHOOK_MAX_ATTEMPTS="50")
    load = SignedLoad(f"http://127.0.0.1:{port}")
    try:
        per_server = crash_loop(lambda: serve_factory(port=port, env=env), load.start(), random.Random(seed))
    except BaseException:
        load.abandon()
        raise
    load.stop()
    db = tmp_path / "wavehook.db"
    assert load.errors >= KILLS, "the kills cut no request: the load was not running through them"
    assert load.other == []

    check_events(db, load)
    expected = {("effect_async", pid, final) for pid, final in load.finals.items()}
    expected |= {("effect_sync", pid, "completed") for pid, final in load.finals.items() if final == "completed"}
    wait_for(
        lambda: query(db, "SELECT count(*) AS n FROM handler_runs WHERE state = 'succeeded'")[0]["n"] == len(expected),
        timeout=60,
        what=f"{len(expected)} handler runs to succeed",
    )
    repeated = check_runs(db, tmp_path, expected)
    lost = query(db, "SELECT count(*) AS n FROM run_attempts WHERE outcome = 'lost'")[0]["n"]
    repeats = query(db, "SELECT count(*) AS n FROM events WHERE duplicates > 0")[0]["n"]
    print(f"crash loop: {len(load.finals)} predictions, per server {per_server}, {load.errors} cut or refused")
    print(f"crash loop: {lost} attempts lost to a kill, {repeated} effects executed again after one")
    print(f"crash loop: {repeats} events delivered again after their answer was cut off")


def check_events(db: Path, load: SignedLoad) -> None:
    """The file is intact; each acknowledged webhook-id is exactly one event; no final status regressed."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    stored = collections.Counter(row["webhook_id"] for row in query(db, "SELECT webhook_id FROM events"))
    assert stored == dict.fromkeys(load.acked, 1)
    statuses = {row["id"]: row["status"] for row in query(db, "SELECT id, status FROM predictions")}
    assert {pid: statuses.get(pid) for pid in load.finals} == load.finals


def check_runs(db: Path, tmp_path: Path, expected: set[tuple[str, str, str]]) -> int:
    """One succeeded run per (handler, prediction, status), one succeeded attempt each, no attempt left
    open; effects between one and one plus the attempts lost to a kill. Returns how many effects repeated."""
    runs = query(db, "SELECT id, handler, prediction_id, status, state FROM handler_runs")
    assert {(r["handler"], r["prediction_id"], r["status"]) for r in runs} == expected
    assert {r["state"] for r in runs} == {"succeeded"}
    outcomes = collections.defaultdict(collections.Counter)  # type: ignore[var-annotated]
    for attempt in query(db, "SELECT run_id, outcome FROM run_attempts"):
        outcomes[attempt["run_id"]][attempt["outcome"]] += 1
    assert {run: counts["succeeded"] for run, counts in outcomes.items()} == {r["id"]: 1 for r in runs}
    assert not [run for run, counts in outcomes.items() if counts[None]], "an attempt was never closed"

    done = collections.Counter((h, p, s) for h, p, s, _pid in effects(tmp_path))
    too_many = []
    for run in runs:
        key = (run["handler"], run["prediction_id"], run["status"])
        if not 1 <= done[key] <= 1 + outcomes[run["id"]]["lost"]:
            too_many.append((key, done[key], dict(outcomes[run["id"]])))
    assert too_many == [], "an effect missing, or repeated without a lost attempt"
    assert set(done) == expected
    return sum(count > 1 for count in done.values())
