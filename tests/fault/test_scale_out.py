"""Scale-out on one PostgreSQL ledger, real processes: three ``wavehook serve`` behind a round-robin balancer
and two ``wavehook worker``, the sandbox delivering 200 tasks with duplicated, reordered and dropped webhooks;
one receiver and one worker killed (-9) and restarted mid-run, PostgreSQL itself restarted once. Afterwards,
with one reconcile pass: every acknowledged delivery stored once, every handler succeeded exactly once per
prediction outcome, no status went backwards, and every instance's API and dashboard show all 200."""

from __future__ import annotations

import collections
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.settings import Settings
from submitter import Submitter
from tests import postgres
from tests.conftest import SECRET
from tests.fault.balancer import balancer_process
from tests.integration.dispatch_support import dispatch_env, effects, start_worker
from tests.support import ROOT, WAVEHOOK, Process, direct, free_port, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.fault]

TASKS = 200
MODEL = "bytedance/seedance-v1-lite-t2v-480p"
# A delivery attempt the sandbox saw fail: answered non-2xx (502 from the balancer, 503 from a receiver
# whose database is restarting) or not answered at all.
NOT_TAKEN = {"refused", "error"}


def delivery_log(sandbox: Process, after: int = 0) -> list[dict[str, Any]]:
    response = httpx.get(f"{sandbox.url}/_sandbox/deliveries", params={"after": after}, timeout=10)  # type: ignore[attr-defined]
    records: list[dict[str, Any]] = response.json()["deliveries"]
    return records


def ledger(url: str, sql: str) -> list[tuple[Any, ...]]:
    with direct(url) as conn:
        return [tuple(row) for row in conn.execute(sql)]


def genuine_accepted(sandbox: Process) -> int:
    return sum(r["kind"] == "genuine" and r["outcome"] == "accepted" for r in delivery_log(sandbox))


def until(predicate: Callable[[], Any], *, timeout: float, what: str) -> None:
    """``wait_for`` at a pace that leaves the processes under test the machine (the log is read whole)."""
    wait_for(predicate, timeout=timeout, interval=0.25, what=what)


@pytest.mark.timeout(420)
def test_three_receivers_two_workers_one_postgres_through_crashes(
    tmp_path: Path,
    postgres_server: postgres.Cluster,
    sandbox_factory: Callable[..., Process],
    serve_factory: Callable[..., Process],
) -> None:
    """See the module docstring: the whole proof, measured against the sandbox's own delivery log."""
    with postgres.cluster() as server:  # its own server: this test restarts it
        databases = postgres.Databases(server)
        url = databases.create()
        env = dispatch_env(tmp_path, WAVEHOOK_DB=url, WAVEHOOK_DISPATCH_CONCURRENCY="4")
        ports = [free_port() for _ in range(3)]
        receivers = [serve_factory(port=port, env=env) for port in ports]
        workers = [start_worker(tmp_path, env, f"worker-{n}") for n in range(2)]
        sandbox = sandbox_factory(
            faults="duplicate=0.3,stale_processing=0.1,drop=0.1",
            seed=20261130,
            queue_time=0.05,
            run_time=4.0,
            jitter=0.9,  # tasks end 0.4 s to 7.6 s after submission: the crashes land mid-run
            retry_initial=0.05,
            retry_max=0.5,
        )
        balancer_port = free_port()
        balancer = balancer_process(balancer_port, [r.url for r in receivers], tmp_path)  # type: ignore[attr-defined]
        with running(balancer, f"http://127.0.0.1:{balancer_port}/_balancer/health"):
            # The same environment as the instances: the same ledger, built-ins switched off. The handler
            # modules are left to the instances (and to the reconcile pass, a process of its own below).
            provider_env = {
                **env,
                "WAVESPEED_WEBHOOK_SECRET": SECRET,
                "WAVESPEED_API_KEY": "sandbox-key",
                "WAVESPEED_BASE_URL": sandbox.url,  # type: ignore[attr-defined]
                "WAVEHOOK_PUBLIC_URL": f"http://127.0.0.1:{balancer_port}",
            }
            settings = Settings.from_env({k: v for k, v in provider_env.items() if k != "WAVEHOOK_HANDLERS"})
            submitter = Submitter(settings)
            try:
                ids = [str(submitter.submit(MODEL, {"prompt": f"task {n}"}).prediction_id) for n in range(TASKS)]
                until(lambda: genuine_accepted(sandbox) >= TASKS // 5, timeout=60, what="a fifth delivered")
                receivers[0].kill9()
                workers[0].kill9()
                crashed_at = len(delivery_log(sandbox))
                until(
                    lambda: any(r["outcome"] in NOT_TAKEN for r in delivery_log(sandbox, crashed_at)),
                    timeout=30,
                    what="a delivery refused while a receiver is down",
                )
                receivers[0] = serve_factory(port=ports[0], env=env)
                workers[0] = start_worker(tmp_path, env, "worker-0-again")
                until(lambda: genuine_accepted(sandbox) >= TASKS // 2, timeout=60, what="half delivered")
                restarted_at = len(delivery_log(sandbox))
                server.restart("immediate")  # a crash of the database server: recovery from its WAL
                until(lambda: genuine_accepted(sandbox) >= TASKS * 0.85, timeout=90, what="most delivered")
                wait_for(
                    lambda: httpx.get(f"{sandbox.url}/_sandbox/status").json()["busy"] == 0,  # type: ignore[attr-defined]
                    timeout=90,
                    what="every task ended and every delivery settled",
                )
                records = delivery_log(sandbox)
                # One reconcile pass, as `wavehook reconcile` run by an operator: it loads the handlers, so
                # the outcomes it ingests enqueue the same runs a webhook would.
                counts = json.loads(
                    subprocess.run(
                        [WAVEHOOK, "reconcile", "--older-than", "0", "--json"],
                        env={**os.environ, **provider_env},
                        cwd=ROOT,
                        capture_output=True,
                        text=True,
                        timeout=120,
                        check=True,
                    ).stdout
                )
            finally:
                submitter.close()
            expected = {("effect_async", pid, "completed") for pid in ids} | {
                ("effect_sync", pid, "completed") for pid in ids
            }
            runs_by_state = "SELECT state, count(*) FROM handler_runs GROUP BY 1"
            try:
                wait_for(
                    lambda: ledger(url, runs_by_state) == [("succeeded", len(expected))],
                    timeout=120,
                    what=f"{len(expected)} handler runs to succeed",
                )
            except AssertionError:
                detail = (
                    ledger(url, runs_by_state),
                    counts,
                    ledger(url, "SELECT status, count(*) FROM predictions GROUP BY 1"),
                )
                raise AssertionError(f"runs, reconcile counts, predictions: {detail}") from None
            check(url, records, crashed_at, restarted_at, ids, counts["errors"])
            felt = [p for p in [*receivers, *workers] if "runs_listener_reconnecting" in p.log()]
            assert len(felt) == len(receivers) + len(workers), "an instance did not notice the database restart"
            assert {(h, p, s) for h, p, s, _pid in effects(tmp_path)} == expected
            check_every_instance(receivers, ids)
        for process in workers:
            process.stop()
        assert len({pid for *_rest, pid in effects(tmp_path)}) >= 3, "the handlers ran in several processes"


def check(
    url: str, records: list[dict[str, Any]], crashed_at: int, restarted_at: int, ids: list[str], errors: int
) -> None:
    """The delivery log against the ledger: stored once, nothing regressed, runs succeeded once each."""
    assert errors == 0
    assert {r["task_id"] for r in records} == set(ids)
    by_kind = collections.Counter(r["kind"] for r in records if r["outcome"] in {"accepted", "dropped"})
    assert by_kind["duplicate"] >= 30, by_kind
    assert by_kind["stale_processing"] >= 5, by_kind
    assert by_kind["dropped"] >= 5, by_kind
    assert not [r for r in records if r["outcome"] == "gave_up"]
    assert [r for r in records[crashed_at:] if r["outcome"] in NOT_TAKEN], "nothing met the killed receiver"
    # Deliveries met the restarting database (each waited for a connection, or got a 503 and came again)
    # and went on being accepted after it.
    assert [r for r in records[restarted_at:] if r["outcome"] == "accepted"], "nothing delivered after the restart"

    # Every acknowledged delivery is stored, once; nothing else is, beyond the reconciled outcomes.
    acknowledged = {(r["webhook_id"], r["body_sha256"]) for r in records if r["outcome"] == "accepted"}
    webhooks = ledger(url, "SELECT webhook_id, body_sha256 FROM events WHERE source = 'webhook'")
    assert len(webhooks) == len(set(webhooks))
    assert set(webhooks) == acknowledged
    refused = {(r["webhook_id"], r["body_sha256"]) for r in records if r["outcome"] in NOT_TAKEN}
    assert refused <= acknowledged, "a refused delivery was not retried into the ledger"

    # No status went backwards: all completed; every late processing stored, none applied.
    assert ledger(url, "SELECT status, count(*) FROM predictions GROUP BY 1") == [("completed", len(ids))]
    stale = ledger(url, "SELECT applied FROM events WHERE status = 'processing'")
    assert {applied for (applied,) in stale} == {0}
    assert len(stale) == by_kind["stale_processing"]
    # The dropped ones came in through the one reconcile pass, and only they.
    dropped = {r["task_id"] for r in records if r["outcome"] == "dropped"}
    reconciled = {pid for (pid,) in ledger(url, "SELECT prediction_id FROM events WHERE source = 'reconcile'")}
    assert reconciled == dropped

    # Each handler succeeded exactly once per prediction outcome: one run each, one succeeded attempt each.
    assert (
        ledger(url, "SELECT count(*) FROM handler_runs GROUP BY prediction_id, status, handler HAVING count(*) > 1")
        == []
    )
    twice = ledger(url, "SELECT run_id FROM run_attempts WHERE outcome = 'succeeded' GROUP BY 1 HAVING count(*) <> 1")
    assert twice == []


def check_every_instance(receivers: list[Process], ids: list[str]) -> None:
    """Each receiver's API and dashboard show all of them, whichever instance stored what."""
    for receiver in receivers:
        base = receiver.url  # type: ignore[attr-defined]
        summary = httpx.get(f"{base}/api/summary", timeout=10).json()
        assert summary["predictions"] == [{"model": MODEL, "status": "completed", "count": len(ids)}], base
        listed = httpx.get(f"{base}/api/predictions", params={"limit": 200}, timeout=10).json()
        assert {item["id"] for item in listed["predictions"]} == set(ids), base
        page = httpx.get(f"{base}/", timeout=10)
        assert page.status_code == 200, base
        for tile in ("total", "completed"):
            assert f'data-count="{tile}">{len(ids)}<' in page.text, (base, tile)
