"""Dispatch faults against real processes: a worker killed mid-handler, failing handlers, slow handlers."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.integration.dispatch_support import deliver, dispatch_env, effects, query, start_worker
from tests.support import ROOT, WAVEHOOK, Process, wait_for


def _run(db: Path, handler: str) -> dict[str, object]:
    rows = query(db, "SELECT * FROM handler_runs WHERE handler = ?", handler)
    return rows[0] if rows else {}


def _attempts(db: Path, run_id: object) -> list[dict[str, object]]:
    return query(db, "SELECT * FROM run_attempts WHERE run_id = ? ORDER BY id", run_id)


@pytest.mark.fault
def test_a_run_whose_worker_was_killed_is_retried_after_its_lease(
    tmp_path: Path, serve_factory: Callable[..., Process], secret: str
) -> None:
    """kill -9 of the worker inside a handler: another worker retries the run once the lease expires,
    and the handler succeeds exactly once."""
    env = dispatch_env(tmp_path)
    web = serve_factory(env={**env, "WAVEHOOK_DISPATCH_IN_WEB": "false"})
    db: Path = web.db  # type: ignore[attr-defined]
    first = start_worker(tmp_path, env, "worker-killed")
    with httpx.Client(base_url=web.url, timeout=10) as client:  # type: ignore[attr-defined]
        deliver(client, secret, "blocked-1", "completed", model="test/block")
    wait_for(lambda: effects(tmp_path, "started"), timeout=20, what="the handler to start")
    first.kill9()
    killed_at = time.time()
    second = start_worker(tmp_path, env, "worker-second")
    try:
        (tmp_path / "gate").touch()
        wait_for(lambda: _run(db, "blocking").get("state") == "succeeded", timeout=30, what="the retried run")
    finally:
        second.stop()
    run = _run(db, "blocking")
    attempts = _attempts(db, run["id"])
    assert [a["outcome"] for a in attempts] == ["lost", "succeeded"]
    assert attempts[1]["started_at"] > killed_at  # type: ignore[operator]
    assert attempts[0]["owner"] != attempts[1]["owner"]
    assert run["attempts"] == 2
    started = effects(tmp_path, "started")
    assert [pid for *_rest, pid in started] == [first.pid, second.pid]
    assert [(h, p) for h, p, _s, _pid in effects(tmp_path)] == [("blocking", "blocked-1")]


@pytest.mark.fault
def test_failing_handlers_back_off_then_succeed_or_die_and_replay_revives_them(
    tmp_path: Path, serve_factory: Callable[..., Process], secret: str
) -> None:
    """A handler failing three times succeeds on the fourth attempt after growing delays; one that always
    fails ends dead with its traceback, and `wavehook replay --dead` after the fix makes it succeed once."""
    env = dispatch_env(tmp_path, WAVEHOOK_MAX_ATTEMPTS="4")
    web = serve_factory(env=env)
    db: Path = web.db  # type: ignore[attr-defined]
    with httpx.Client(base_url=web.url, timeout=10) as client:  # type: ignore[attr-defined]
        deliver(client, secret, "flaky-1", "completed", model="test/flaky")
        deliver(client, secret, "broken-1", "completed", model="test/broken")
    wait_for(lambda: _run(db, "flaky").get("state") == "succeeded", timeout=30, what="the flaky run to succeed")
    wait_for(lambda: _run(db, "broken").get("state") == "dead", timeout=30, what="the broken run to die")

    flaky = _attempts(db, _run(db, "flaky")["id"])
    assert [a["outcome"] for a in flaky] == ["failed", "failed", "failed", "succeeded"]
    starts = [float(a["started_at"]) for a in flaky]  # type: ignore[arg-type]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # Attempt n waits at least ⅔·0.3·2ⁿ⁻¹ s (receiver/dispatch/backoff.py): each floor is twice the one before, so
    # the delays grow. Only the floors are checked: a loaded machine adds time to a gap, never takes any away.
    floors = [0.2 * 2**n for n in range(3)]
    assert all(gap >= floor for gap, floor in zip(gaps, floors, strict=True)), (gaps, floors)
    assert gaps[2] > gaps[0], gaps

    broken = _run(db, "broken")
    assert broken["attempts"] == 4
    assert broken["last_error"] == "RuntimeError: broken until the fixed file exists"
    assert "Traceback" in str(_attempts(db, broken["id"])[-1]["traceback"])

    (tmp_path / "fixed").touch()
    replay = Process(
        [WAVEHOOK, "replay", "--dead", "--handler", "broken"],
        env={**env, "WAVEHOOK_DB": str(db)},
        log_path=tmp_path / "replay.log",
        cwd=ROOT,
    ).start()
    assert replay.proc is not None
    assert replay.proc.wait(30) == 0, replay.log()
    assert f"replayed 1 run(s): {broken['id']}" in replay.log()
    wait_for(lambda: _run(db, "broken").get("state") == "succeeded", timeout=30, what="the replayed run")
    assert [(h, p) for h, p, _s, _pid in effects(tmp_path) if h == "broken"] == [("broken", "broken-1")]


@pytest.mark.integration
def test_webhook_answers_stay_fast_while_every_handler_sleeps(
    tmp_path: Path, serve_factory: Callable[..., Process], secret: str
) -> None:
    """With every dispatch slot taken by sleeping handlers (async and sync), deliveries are still answered
    in milliseconds, not after the handlers."""
    env = dispatch_env(tmp_path, WAVEHOOK_DISPATCH_CONCURRENCY="8", WAVEHOOK_SHUTDOWN_GRACE_SECONDS="0.5")
    web = serve_factory(env=env)
    latencies = []
    with httpx.Client(base_url=web.url, timeout=10) as client:  # type: ignore[attr-defined]
        deliver(client, secret, "warm-up", "processing", model="test/sleep")
        for n in range(30):
            began = time.perf_counter()
            deliver(client, secret, f"sleepy-{n}", "completed", model="test/sleep")
            latencies.append(time.perf_counter() - began)
            if n == 4:
                wait_for(lambda: len(effects(tmp_path, "started")) >= 8, timeout=10, what="every slot to be busy")
    assert effects(tmp_path) == []  # no handler had finished: all answers came while they slept
    assert len(effects(tmp_path, "started")) == 8
    assert max(latencies) < 0.5, latencies
    assert statistics.median(latencies) < 0.05, latencies
