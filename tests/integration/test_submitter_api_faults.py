"""The submitter against a real sandbox whose API fails as a real one does (429 with Retry-After, 5xx, answers
held past the timeout or lost after the task was created), with a real receiver on the same ledger:
``wavehook batch`` ends every job with exactly one provider task and reports each category, and
``wavehook submit --wait`` resolves a lost answer by lookup. Also the policy on inputs a page does not list."""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.settings import Settings
from tests.integration.submitter_support import API_KEY, Loop, make_loop
from tests.support import Process

pytestmark = [pytest.mark.integration, pytest.mark.fault]
JOBS = 200
T2V = "bytedance/seedance-v1-lite-t2v-480p"
PRO = "bytedance/dreamina-v3.0-pro/text-to-video"
RATES = "rate_limit=0.2,server_error=0.1,timeout=0.05,drop_answer=0.05"
# Our own look-ups are exempt from the faults.
EXEMPT = {"Authorization": f"Bearer {API_KEY}", "X-Sandbox-Faults": "none"}


def sandbox_tasks(sandbox: Process) -> list[dict[str, Any]]:
    """Every task the sandbox holds, as its list endpoint shows them (with their inputs)."""
    found: list[dict[str, Any]] = []
    for page in range(1, 100):
        answer = httpx.post(
            f"{sandbox.url}/api/v3/predictions",  # type: ignore[attr-defined]
            json={"page": page, "page_size": 100},
            headers=EXEMPT,
            timeout=10,
        )
        items = answer.json()["data"]["items"]
        found += items
        if len(items) < 100:
            return found
    raise AssertionError("more pages than expected")


def request_log(sandbox: Process) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = httpx.get(f"{sandbox.url}/_sandbox/requests", timeout=10).json()["requests"]  # type: ignore[attr-defined]
    return [r for r in records if r["faults"] or r["client"] == "wavehook"]


def explain_extra_tasks(loop: Loop, tasks: list[dict[str, Any]]) -> str:
    """For a failure message: the requests behind each task no submission owns."""
    owned = {row["prediction_id"] for row in loop.rows("SELECT prediction_id FROM submissions")}
    log = request_log(loop.sandbox)
    lines = []
    for task in tasks:
        if task["id"] not in owned:
            creator = next((r for r in log if r["task_id"] == task["id"]), None)
            same = [r for r in log if creator and r["fingerprint"] == creator["fingerprint"]]
            subs = loop.rows("SELECT * FROM submissions WHERE input LIKE ?", f'%{task["input"]["prompt"]}"%')
            lines.append(f"task {task['id']} ({task['input']}) owned by none: requests {same}; submissions {subs}")
    return "\n".join(lines)


@pytest.fixture
def faulty(
    sandbox_factory: Callable[..., Process],
    serve_factory: Callable[..., Process],
    settings_factory: Callable[..., Settings],
    tmp_path: Path,
) -> Loop:
    """A sandbox failing at the issue's realistic rates (seeded), short answer latency, and a submitter whose
    read timeout is below the sandbox's answer hold."""
    sandbox = sandbox_factory(
        api_faults=RATES,
        seed=7,
        retry_after=1,
        answer_hold=10,
        answer_delay=0.02,
        request_log=tmp_path / "requests.jsonl",
    )
    receiver = serve_factory(env={"WAVEHOOK_DOWNLOAD": "false"})
    return make_loop(
        sandbox,
        receiver,
        settings_factory,
        backoff_seconds=0.05,
        unknown_grace_seconds=1.0,
        connect_timeout_seconds=3.0,
        read_timeout_seconds=3.0,
        retries=8,
    )


@pytest.mark.timeout(180)
def test_batch_of_200_under_api_faults_ends_with_one_task_per_job(faulty: Loop, tmp_path: Path) -> None:
    """Every job ends submitted or resolved, each tied to its own task, and the sandbox holds exactly one task per
    job; 429s were waited out for their Retry-After; the summary's counts match what the sandbox logged."""
    prompts = [f"scene {n}" for n in range(JOBS)]
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(
        "".join(
            json.dumps({"model": PRO if n % 2 else T2V, "input": {"prompt": p}}) + "\n" for n, p in enumerate(prompts)
        )
    )
    run = faulty.cli("batch", str(jobs), "--concurrency", "16", "--json", timeout=150)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)
    assert (summary["total"], summary["unknown"], summary["failed"], summary["problems"]) == (JOBS, 0, 0, [])
    assert summary["submitted"] + summary["resolved"] == JOBS
    assert summary["resolved"] > 0
    assert summary["resent"] > 0
    assert summary["ambiguous"]["no_answer"] > 0
    assert summary["ambiguous"]["server_error"] > 0
    assert summary["retried"]["rate_limited"] > 0

    tasks = sandbox_tasks(faulty.sandbox)
    assert len(tasks) == JOBS, explain_extra_tasks(faulty, tasks)
    assert sorted(task["input"]["prompt"] for task in tasks) == sorted(prompts)  # one task per job
    subs = faulty.rows("SELECT job_key, state, prediction_id, resolved_by FROM submissions")
    assert len(subs) == JOBS
    assert {row["state"] for row in subs} == {"submitted"}
    assert {row["prediction_id"] for row in subs} == {task["id"] for task in tasks}
    assert Counter(row["resolved_by"] for row in subs)["response"] < JOBS  # some found by lookup or webhook

    log = request_log(faulty.sandbox)
    outcomes = Counter(record["outcome"] for record in log)
    statuses = Counter(record["http_status"] for record in log if record["outcome"] == "server_error")
    retried, ambiguous = Counter(summary["retried"]), Counter(summary["ambiguous"])
    assert outcomes["rate_limited"] == retried["rate_limited"]
    assert statuses[503] == retried["unavailable"]
    assert statuses[500] + statuses[502] == retried["server_error"] + ambiguous["server_error"]
    assert outcomes["hung_up"] + outcomes["dropped"] == retried["no_answer"] + ambiguous["no_answer"]
    assert outcomes["hung_up"] > 0
    assert outcomes["dropped"] > 0

    # A rate-limited submit came back no sooner than its Retry-After (its retries share one fingerprint).
    by_request: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in log:
        if record["path"] != "/api/v3/predictions":
            by_request[record["fingerprint"]].append(record)
    waits = [
        later["at"] - record["at"]
        for records in by_request.values()
        for record, later in itertools.pairwise(records)
        if record["outcome"] == "rate_limited"
    ]
    assert waits
    assert min(waits) >= 1.0 - 0.05, waits

    final = faulty.wait_final(JOBS, timeout=60)
    assert {row["status"] for row in final} == {"completed"}


def test_submit_wait_resolves_a_lost_answer_by_lookup(loop: Loop) -> None:
    """The sandbox creates the task and closes the connection without an answer: `submit --wait` finds the task
    by the list lookup, waits for its webhook and exits 0; the sandbox holds one task."""
    run = loop.cli("submit", T2V, "-p", "prompt=a fox [sandbox:drop_answer]", "--wait", "--timeout", "30", "--json")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["submission"]["outcome"] == "resolved"
    assert out["prediction"]["status"] == "completed"
    (task,) = sandbox_tasks(loop.sandbox)
    assert task["id"] == out["submission"]["prediction_id"]
    (row,) = loop.rows("SELECT resolved_by, attempts FROM submissions")
    assert row == {"resolved_by": "lookup", "attempts": 1}
    dropped = [r for r in request_log(loop.sandbox) if r["outcome"] == "dropped"]
    assert [r["task_id"] for r in dropped] == [task["id"]]


def test_unknown_inputs_refused_unless_allowed_then_sent(loop: Loop, tmp_path: Path) -> None:
    """`submit` refuses an input the page does not list (exit 2, with a did-you-mean, nothing sent); with
    --allow-extra it is sent, with a warning, and the sandbox keeps it; WAVEHOOK_ALLOW_EXTRA_INPUTS does the
    same for a batch."""
    refused = loop.cli("submit", T2V, "-p", "prompt=a fox", "-p", "durration=6")
    assert refused.returncode == 2
    assert "durration is not an input of" in refused.stderr
    assert "did you mean duration?" in refused.stderr
    assert sandbox_tasks(loop.sandbox) == []
    sent = loop.cli("submit", T2V, "-p", "prompt=a fox", "-p", "negative_prompt=blur", "--allow-extra")
    assert sent.returncode == 0, sent.stderr
    assert "warning: negative_prompt is not an input of" in sent.stderr
    (task,) = sandbox_tasks(loop.sandbox)
    assert task["input"]["negative_prompt"] == "blur"
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"model": T2V, "input": {"prompt": "b", "negative_prompt": "c"}}) + "\n")
    assert loop.cli("batch", str(jobs), "--no-progress").returncode == 2
    env = {**loop.env, "WAVEHOOK_ALLOW_EXTRA_INPUTS": "true"}
    allowed = Loop(loop.sandbox, loop.receiver, loop.settings, env).cli("batch", str(jobs), "--no-progress")
    assert allowed.returncode == 0, allowed.stderr
    assert len(sandbox_tasks(loop.sandbox)) == 2
