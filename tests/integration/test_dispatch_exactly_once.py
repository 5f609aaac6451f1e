"""Exactly once to success, against real processes: the web process and two workers dispatch one ledger."""

from __future__ import annotations

import concurrent.futures
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from receiver.settings import Settings
from tests.integration.dispatch_support import deliver, dispatch_env, duplicates, effects, query, start_worker, states
from tests.integration.reconcile_pass import final_status
from tests.support import ROOT, Process, wait_for

MODEL = "bytedance/seedance-v1-lite-t2v-480p"


def _plan(ids: list[str]) -> list[tuple[str, str, str]]:
    """Every prediction's deliveries, duplicated and shuffled: (prediction id, status, webhook-id)."""
    plan = []
    for index, pid in enumerate(ids):
        final = final_status(index)
        plan += [
            (pid, "processing", f"{pid}-processing"),
            (pid, final, f"{pid}-final"),
            (pid, final, f"{pid}-final"),  # the same delivery again
            (pid, final, f"{pid}-redelivered"),  # the same event under another webhook-id
        ]
    random.Random(5).shuffle(plan)  # so a late "processing" often follows the final status
    return plan


def _send(url: str, secret: str, plan: list[tuple[str, str, str]]) -> None:
    with httpx.Client(base_url=url, timeout=10) as client, concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: deliver(client, secret, item[0], item[1], model=MODEL, webhook_id=item[2]), plan))


def _reconcile(env: dict[str, str], db: Path | str, count: int) -> int:
    """A reconciliation pass from a third process, through the one ingest path: every result again."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.integration.reconcile_pass", str(count)],
        env={**os.environ, **env, "WAVEHOOK_DB": str(db)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.integration
@pytest.mark.usefixtures("backend")
def test_every_handler_succeeds_once_per_prediction(
    tmp_path: Path, serve_factory: Callable[..., Process], secret: str, settings_factory: Callable[..., Settings]
) -> None:
    """100 predictions, duplicated and reordered deliveries, a web restart and a reconciliation pass, with the
    web process and two workers dispatching: each handler succeeded exactly once per prediction."""
    env = dispatch_env(tmp_path, WAVEHOOK_DISPATCH_CONCURRENCY="2", WAVEHOOK_DB=settings_factory().db)
    web = serve_factory(env=env)
    db: Path | str = web.db  # type: ignore[attr-defined]
    workers = [start_worker(tmp_path, env, f"worker-{n}") for n in range(2)]
    try:
        ids = [f"pred-{n:03d}" for n in range(100)]
        plan = _plan(ids)
        _send(web.url, secret, plan[: len(plan) // 2])  # type: ignore[attr-defined]
        web.stop()  # graceful: in-flight runs finish or are released
        port = int(web.url.rsplit(":", 1)[1])  # type: ignore[attr-defined]
        web = serve_factory(env=env, port=port)
        _send(web.url, secret, plan[len(plan) // 2 :])  # type: ignore[attr-defined]
        assert _reconcile(env, db, len(ids)) == 0  # every run already existed: nothing new to enqueue
        expected = {("effect_async", pid, final_status(n)) for n, pid in enumerate(ids)}
        expected |= {("effect_sync", pid, "completed") for n, pid in enumerate(ids) if n % 5}
        wanted = {"succeeded": len(expected)}
        wait_for(lambda: states(db) == wanted, timeout=60, what=f"{len(expected)} runs to succeed")
    finally:
        for worker in workers:
            worker.stop()
    done = effects(tmp_path)
    assert duplicates(done) == {}
    assert {(h, p, s) for h, p, s, _pid in done} == expected
    assert len({pid for *_rest, pid in done}) >= 2, "the work was shared between processes"
    assert not {pid for *_rest, pid in done} & {os.getpid()}
    twice = query(db, "SELECT run_id FROM run_attempts WHERE outcome = 'succeeded' GROUP BY run_id HAVING count(*) > 1")
    assert twice == []
