"""The provider's official JavaScript SDK (npm ``wavespeed``, pinned), unmodified, against a real sandbox process
on loopback: runs to completion through its result polls, uploads, sync mode and its timeout answer, failures,
submits it never resends, and every API fault on its result polls, which it retries.

The package is installed once per session under tests/artifacts/ with npm; ``wavespeed_js_driver.js`` makes the
calls and writes what each returned or threw as JSON. Without node and npm, or when the install fails, the tests
are skipped with the reason, and fail under ``CI``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.media import SAMPLE_MP4, png
from tests.support import ROOT, Process, wait_for

pytestmark = pytest.mark.integration
SDK_VERSION = "0.3.2"
SDK_HOME = ROOT / "tests" / "artifacts" / f"wavespeed-js-{SDK_VERSION}"
DRIVER = Path(__file__).with_name("wavespeed_js_driver.js")
CLIENT_NAME = "wavespeed-js"  # the X-Client-Name the SDK sends, which the request log keeps
LOOKUP = "test-lookup"
# The test's own look-ups: never faulted, and told apart in the request log (they draw no fault).
EXEMPT = {"Authorization": "Bearer sandbox-key", "X-Sandbox-Faults": "none", "X-Client-Name": LOOKUP}
T2V = "bytedance/seedance-v1-lite-t2v-480p"
I2V = "bytedance/waver-1.0"
POLL = {"pollInterval": 0.02, "timeout": 30}
TASK_ID = re.compile(r"[0-9a-f]{32}")


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the JavaScript SDK tests")
    pytest.skip(reason)


def installed_version(package: Path) -> str | None:
    try:
        version: str = json.loads((package / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return version


@pytest.fixture(scope="session")
def js_sdk() -> Path:
    """The pinned package's directory, installed with npm on first use and kept for later sessions."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        unavailable("node and npm are needed to run the JavaScript SDK (apt-get install nodejs npm)")
    package = SDK_HOME / "node_modules" / "wavespeed"
    if installed_version(package) != SDK_VERSION:
        SDK_HOME.mkdir(parents=True, exist_ok=True)
        # A package.json of its own keeps npm from looking for one further up the tree.
        (SDK_HOME / "package.json").write_text('{"private": true}\n')
        command = [str(npm), "install", "--no-audit", "--no-fund", "--ignore-scripts", f"wavespeed@{SDK_VERSION}"]
        try:
            done = subprocess.run(command, cwd=SDK_HOME, capture_output=True, text=True, timeout=60, check=False)
        except subprocess.TimeoutExpired:
            unavailable(f"npm install wavespeed@{SDK_VERSION} did not finish within 60 s")
        if done.returncode != 0 or installed_version(package) != SDK_VERSION:
            unavailable(f"npm install wavespeed@{SDK_VERSION} failed ({done.returncode}): {done.stderr[-600:]}")
    return package


def call(method: str, *args: Any) -> dict[str, Any]:
    return {"method": method, "args": list(args)}


@pytest.fixture
def js(js_sdk: Path, tmp_path: Path) -> Callable[..., list[dict[str, Any]]]:
    """``js(sandbox, call(...), ..., **client_options)``: a new SDK Client pointed at the sandbox through its
    documented baseUrl option makes the calls in turn; returns ``{"ok", "value"}`` or ``{"ok", "error"}`` each."""
    runs = itertools.count()

    def run(sandbox: Process, *calls: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
        n = next(runs)
        plan, out = tmp_path / f"js-plan-{n}.json", tmp_path / f"js-result-{n}.json"
        client = {"baseUrl": sandbox.url, "retryInterval": 0.05, **options}  # type: ignore[attr-defined]
        plan.write_text(json.dumps({"sdk": str(js_sdk), "apiKey": "sandbox-key", "client": client, "calls": calls}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("WAVESPEED_")}
        done = subprocess.run(
            ["node", str(DRIVER), str(plan), str(out)], capture_output=True, text=True, env=env, timeout=90, check=False
        )
        assert done.returncode == 0, f"the driver failed:\n{done.stdout}\n{done.stderr}"
        result = json.loads(out.read_text())
        assert result["version"] == SDK_VERSION
        results: list[dict[str, Any]] = result["results"]
        return results

    return run


def requests_log(sandbox: Process) -> list[dict[str, Any]]:
    """The sandbox's API request log, in the order the requests arrived (and their faults were drawn)."""
    records: list[dict[str, Any]] = httpx.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()["requests"]  # type: ignore[attr-defined]
    return sorted(records, key=lambda record: (record["at"], record["seq"]))


def task(sandbox: Process, task_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{sandbox.url}/api/v3/predictions/{task_id}/result", headers=EXEMPT, timeout=10)  # type: ignore[attr-defined]
    data: dict[str, Any] = answer.json()["data"]
    return data


def task_count(sandbox: Process) -> int:
    count: int = httpx.get(f"{sandbox.url}/_sandbox/status", timeout=5).json()["tasks"]  # type: ignore[attr-defined]
    return count


def test_sdk_runs_models_to_completion_through_the_result_route(
    sandbox_factory: Callable[..., Process], js: Callable[..., list[dict[str, Any]]]
) -> None:
    """run() and runNoThrow() submit, poll GET …/result until completed and return the output, which serves
    the real MP4; the SDK's requests were one submit, then result polls of that task only."""
    sandbox = sandbox_factory()
    ran, detailed = js(
        sandbox,
        call("run", T2V, {"prompt": "a red fox in fresh snow"}, POLL),
        call("runNoThrow", T2V, {"prompt": "a grey wolf at dusk"}, POLL),
    )
    assert ran["ok"], ran
    assert detailed["ok"], detailed
    (url,) = ran["value"]["outputs"]
    video = httpx.get(url, timeout=10)
    assert (video.headers["content-type"], video.content) == ("video/mp4", SAMPLE_MP4.read_bytes())
    detail = detailed["value"]["detail"]
    assert (detail["status"], detail["model"]) == ("completed", T2V)
    assert detailed["value"]["outputs"] == task(sandbox, detail["taskId"])["outputs"]
    records = [r for r in requests_log(sandbox) if r["client"] == CLIENT_NAME]
    submits = [r for r in records if r["method"] == "POST"]
    assert [(r["path"], r["http_status"]) for r in submits] == [(f"/api/v3/{T2V}", 200)] * 2
    first, second = (r["task_id"] for r in submits)
    assert url == f"{sandbox.url}/media/outputs/{first}/output.mp4"  # type: ignore[attr-defined]
    assert second == detail["taskId"]
    polls = [r for r in records if r["method"] == "GET"]
    assert polls, "the SDK never asked for a result"
    assert {r["path"] for r in polls} == {f"/api/v3/predictions/{tid}/result" for tid in (first, second)}
    assert all(r["http_status"] == 200 for r in polls)
    assert task(sandbox, first)["outputs"] == [url]


def test_sdk_uploads_a_file_and_a_model_uses_it(
    sandbox_factory: Callable[..., Process], js: Callable[..., list[dict[str, Any]]], tmp_path: Path
) -> None:
    """upload() gets a ticket, PUTs the bytes and returns a download URL serving them; a model accepts it."""
    sandbox = sandbox_factory()
    path = tmp_path / "cat.png"
    path.write_bytes(png())
    (uploaded,) = js(sandbox, call("upload", str(path)))
    assert uploaded["ok"], uploaded
    download = httpx.get(uploaded["value"], timeout=10)
    assert (download.content, download.headers["content-type"]) == (png(), "image/png")
    (ran,) = js(sandbox, call("run", I2V, {"image": uploaded["value"], "prompt": "the cat walks"}, POLL))
    assert ran["ok"], ran
    assert ran["value"]["outputs"][0].endswith("/output.mp4")
    listing = httpx.post(f"{sandbox.url}/api/v3/predictions", json={"model": I2V}, headers=EXEMPT, timeout=10)  # type: ignore[attr-defined]
    (listed,) = listing.json()["data"]["items"]
    assert (listed["input"]["image"], listed["outputs"]) == (uploaded["value"], ran["value"]["outputs"])


def test_sdk_sync_mode_completes_in_one_request_or_raises_its_sync_timeout(
    sandbox_factory: Callable[..., Process], js: Callable[..., list[dict[str, Any]]]
) -> None:
    """Within --sync-timeout, sync mode returns the output from the submit alone; past it, run() raises
    WavespeedSyncTimeoutException with the task id and result URL, runNoThrow() reports it `processing`, and
    both tasks go on to complete."""
    fast = sandbox_factory(sync_timeout=10)
    (done,) = js(fast, call("run", T2V, {"prompt": "a quick fox"}, {"enableSyncMode": True, "timeout": 30}))
    assert done["ok"], done
    assert done["value"]["outputs"][0].endswith("/output.mp4")
    assert [(r["method"], r["http_status"]) for r in requests_log(fast)] == [("POST", 200)]

    slow = sandbox_factory(sync_timeout=0.2, run_time=1.5)
    sync = {"enableSyncMode": True, "timeout": 30}
    raised, reported = js(
        slow, call("run", T2V, {"prompt": "a slow fox"}, sync), call("runNoThrow", T2V, {"prompt": "a slower"}, sync)
    )
    assert not raised["ok"]
    error = raised["error"]
    assert error["name"] == "WavespeedSyncTimeoutException"
    assert TASK_ID.fullmatch(error["taskId"]), error
    assert error["message"].startswith(f"Sync mode timed out (task_id: {error['taskId']}): Sync mode timed out after")
    assert error["resultUrl"] == f"{slow.url}/api/v3/predictions/{error['taskId']}/result"  # type: ignore[attr-defined]
    assert reported["ok"], reported
    outcome = reported["value"]
    assert (outcome["outputs"], outcome["detail"]["status"]) == (None, "processing")
    assert outcome["detail"]["error"]["name"] == "WavespeedSyncTimeoutException"
    assert outcome["detail"]["resultUrl"] == f"{slow.url}/api/v3/predictions/{outcome['detail']['taskId']}/result"  # type: ignore[attr-defined]
    for task_id in (error["taskId"], outcome["detail"]["taskId"]):
        wait_for(lambda t=task_id: task(slow, t)["status"] == "completed", timeout=20, what=f"{task_id} to complete")
    assert task_count(slow) == 2


def test_sdk_reports_failed_and_cancelled_tasks_and_a_refused_input(
    sandbox_factory: Callable[..., Process], js: Callable[..., list[dict[str, Any]]]
) -> None:
    """A task asked to fail or be cancelled stops the polling with the sandbox's error; an invalid input fails
    the submit with the 400 naming the field."""
    sandbox = sandbox_factory()
    failed, cancelled, refused = js(
        sandbox,
        call("run", T2V, {"prompt": "x [sandbox:fail]"}, POLL),
        call("runNoThrow", T2V, {"prompt": "x [sandbox:cancel]"}, POLL),
        call("run", T2V, {"prompt": "x", "duration": 42}, POLL),
    )
    assert not failed["ok"]
    assert re.fullmatch(r"Prediction failed \(task_id: [0-9a-f]{32}\): .*asked to fail.*", failed["error"]["message"])
    detail = cancelled["value"]["detail"]
    assert (cancelled["value"]["outputs"], detail["status"]) == (None, "failed")
    assert detail["error"]["name"] == "WavespeedPredictionException"
    assert task(sandbox, detail["taskId"])["status"] == "cancelled"
    assert refused["error"]["name"] == "WavespeedSubmissionException"
    assert "HTTP 400" in refused["error"]["message"]
    assert "duration" in refused["error"]["message"]
    assert task_count(sandbox) == 2


def test_sdk_never_resends_a_submit_that_met_an_api_fault(
    sandbox_factory: Callable[..., Process], js: Callable[..., list[dict[str, Any]]]
) -> None:
    """A submit answered 429 or 503 (nothing created) or whose answer was lost (task created) raises the SDK's
    submission error, even with task-level retries on: one POST each, and only the lost answer left a task."""
    sandbox = sandbox_factory()
    results = js(
        sandbox,
        call("run", T2V, {"prompt": "a fox [sandbox:rate_limit=1]"}, POLL),
        call("run", T2V, {"prompt": "a fox [sandbox:server_error=503]"}, POLL),
        call("run", T2V, {"prompt": "a fox [sandbox:drop_answer]"}, POLL),
        maxRetries=2,
    )
    assert [r["error"]["name"] for r in results] == ["WavespeedSubmissionException"] * 3
    limited, unavailable_, dropped = (r["error"]["message"] for r in results)
    assert "HTTP 429" in limited
    assert "HTTP 503" in unavailable_
    assert "may already have been created" in dropped
    records = requests_log(sandbox)
    assert [(r["method"], r["outcome"], r["http_status"], r["faults"], r["retry_after"]) for r in records] == [
        ("POST", "rate_limited", 429, ["rate_limit"], "1"),
        ("POST", "server_error", 503, ["server_error"], None),
        ("POST", "dropped", None, ["drop_answer"], None),
    ]
    assert task_count(sandbox) == 1
    assert task(sandbox, records[2]["task_id"])["id"] == records[2]["task_id"]


# Seeded API fault rates: the sequence of faults is replayed by a probe sandbox first, so that each kind can be
# put on the first result poll of one SDK run (after a submit the seed leaves alone).
API_FAULT_RATES = "rate_limit=0.2,server_error=0.2,timeout=0.1,drop_answer=0.1"
SEED = 7
PROBES = 80
# fault -> the outcome the request log shows for the SDK's poll (it hangs up on a held answer)
RETRIED = {
    "rate_limit": "rate_limited",
    "server_error": "server_error",
    "answer_timeout": "hung_up",
    "drop_answer": "dropped",
}


def spend_draws(sandbox: Process, count: int) -> None:
    """``count`` API requests that draw from the run's fault rates, whatever they meet."""
    with httpx.Client(base_url=sandbox.url, headers={"Authorization": "Bearer x"}, timeout=0.3) as client:  # type: ignore[attr-defined]
        for _ in range(count):
            with contextlib.suppress(httpx.HTTPError):  # a dropped or held answer is one of the draws
                client.get("/api/v3/balance")


def draws(sandbox: Process, count: int | None = None) -> list[dict[str, Any]]:
    """The requests that drew from the fault rates, in order; with ``count``, once that many are logged (a
    request the client hung up on is logged when the sandbox notices)."""

    def drawn() -> list[dict[str, Any]]:
        return [record for record in requests_log(sandbox) if record["client"] != LOOKUP]

    if count is not None:
        wait_for(lambda: len(drawn()) >= count, timeout=15, what=f"{count} requests to be logged")
    return drawn()


def test_sdk_retries_every_api_fault_on_its_result_polls(
    sandbox_factory: Callable[..., Process], js: Callable[..., list[dict[str, Any]]]
) -> None:
    """Under seeded --api-faults, each fault (429, a 5xx, an answer held past the SDK's timeout, a dropped
    answer) meets the first result poll of one run: the SDK retries and the run completes with one task."""
    probe = sandbox_factory(api_faults=API_FAULT_RATES, seed=SEED, answer_hold=0.05)
    spend_draws(probe, PROBES)
    sequence = [record["faults"] for record in draws(probe, PROBES)]

    sandbox = sandbox_factory(api_faults=API_FAULT_RATES, seed=SEED, answer_hold=10)
    for runs, (fault, outcome) in enumerate(RETRIED.items(), start=1):
        drawn = len(draws(sandbox))
        start = next((j for j in range(drawn, PROBES - 1) if sequence[j : j + 2] == [[], [fault]]), None)
        assert start is not None, f"seed {SEED}: no clean draw followed by {fault} after draw {drawn}; change it"
        spend_draws(sandbox, start - drawn)
        assert len(draws(sandbox, start)) == start
        (ran,) = js(
            sandbox,
            call("run", T2V, {"prompt": f"a fox meets {fault}"}, POLL),
            connectionTimeout=1,
            maxConnectionRetries=10,
        )
        assert ran["ok"], ran
        records = draws(sandbox)[start:]
        assert {r["client"] for r in records} == {CLIENT_NAME}
        submit, first_poll, *_, last_poll = records
        result_path = f"/api/v3/predictions/{submit['task_id']}/result"
        assert (submit["method"], submit["faults"], submit["http_status"]) == ("POST", [], 200)
        assert (first_poll["path"], first_poll["faults"], first_poll["outcome"]) == (result_path, [fault], outcome)
        assert (last_poll["path"], last_poll["http_status"]) == (result_path, 200)
        assert [r["faults"] for r in records] == sequence[start : start + len(records)]
        assert ran["value"]["outputs"] == task(sandbox, submit["task_id"])["outputs"]
        assert task_count(sandbox) == runs
