"""Faults on the API side of a real ``wavehook sandbox``: per request by header, by seeded rate, exempted by
``none``, each recorded in the request log (never with the API key)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.fault]
KEY = "sandbox-key-that-must-never-be-logged"
AUTH = {"Authorization": f"Bearer {KEY}"}
T2V = "bytedance/seedance-v1-lite-t2v-480p"


def submit(sandbox: Process, faults: str | None = None, timeout: float = 10, prompt: str = "a fox") -> httpx.Response:
    headers = {**AUTH, **({"X-Sandbox-Faults": faults} if faults is not None else {})}
    return httpx.post(
        f"{sandbox.url}/api/v3/{T2V}",  # type: ignore[attr-defined]
        json={"prompt": prompt},
        params={"webhook": "http://127.0.0.1:9/hook"},
        headers=headers,
        timeout=timeout,
    )


def requests_log(sandbox: Process) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = httpx.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()["requests"]  # type: ignore[attr-defined]
    return records


def tasks(sandbox: Process) -> int:
    count: int = httpx.get(f"{sandbox.url}/_sandbox/status", timeout=5).json()["tasks"]  # type: ignore[attr-defined]
    return count


def test_header_faults_answer_as_named_and_are_logged(sandbox_factory: Callable[..., Process], tmp_path: Path) -> None:
    """rate_limit answers 429 with Retry-After and server_error the status named, both before anything is created;
    answer_timeout creates the task and holds the answer past the client's timeout; drop_answer creates it and
    closes the connection without an answer. Each is one request log record, the same in the JSON-lines file."""
    log_file = tmp_path / "requests.jsonl"
    sandbox = sandbox_factory(request_log=log_file, retry_after=3)
    limited = submit(sandbox, "rate_limit")
    assert (limited.status_code, limited.headers["retry-after"], limited.json()["code"]) == (429, "3", 429)
    assert "retry after 3 s" in limited.json()["message"]
    assert submit(sandbox, "server_error=502").status_code == 502
    assert submit(sandbox, "server_error").status_code == 500
    assert tasks(sandbox) == 0
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        submit(sandbox, "answer_timeout=30", timeout=0.5)
    assert time.monotonic() - started < 5
    assert tasks(sandbox) == 1
    with pytest.raises(httpx.RemoteProtocolError, match="disconnected without sending a response"):
        submit(sandbox, "drop_answer")
    assert tasks(sandbox) == 2
    held = submit(sandbox, "answer_timeout=0.3", timeout=10)
    assert held.status_code == 200
    records = wait_for(lambda: len(found := requests_log(sandbox)) == 6 and found, timeout=10, what="6 records")
    assert [(r["outcome"], r["http_status"], r["faults"]) for r in records] == [
        ("rate_limited", 429, ["rate_limit"]),
        ("server_error", 502, ["server_error"]),
        ("server_error", 500, ["server_error"]),
        ("hung_up", None, ["answer_timeout"]),
        ("dropped", None, ["drop_answer"]),
        ("held", 200, ["answer_timeout"]),
    ]
    assert records[0]["retry_after"] == "3"
    assert [r["task_id"] is not None for r in records] == [False, False, False, True, True, True]
    assert all((r["method"], r["path"]) == ("POST", f"/api/v3/{T2V}") for r in records)
    assert records[5]["duration_ms"] >= 300
    on_disk = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert on_disk == records
    assert KEY not in log_file.read_text()
    assert "9/hook" not in log_file.read_text()  # the query string (a webhook URL) is never logged


def test_prompt_marker_drops_an_answer_for_clients_without_headers(sandbox_factory: Callable[..., Process]) -> None:
    """[sandbox:drop_answer] in a prompt creates the task and closes the connection without an answer."""
    sandbox = sandbox_factory()
    with pytest.raises(httpx.RemoteProtocolError):
        submit(sandbox, prompt="a fox [sandbox:drop_answer]")
    assert tasks(sandbox) == 1
    limited = submit(sandbox, prompt="a fox [sandbox:rate_limit=2]")
    assert (limited.status_code, limited.headers["retry-after"], tasks(sandbox)) == (429, "2", 1)


def test_rates_are_seeded_and_none_exempts_a_request(sandbox_factory: Callable[..., Process]) -> None:
    """Two sandboxes with the same --seed and --api-faults answer the same sequence of requests the same way;
    `X-Sandbox-Faults: none` is never faulted, even at a rate of 1; bad rates are refused at start."""
    rates = "rate_limit=0.3,server_error=0.2,timeout=0.1,drop_answer=0.1"
    runs = []
    for _ in range(2):
        sandbox = sandbox_factory(api_faults=rates, seed=42, answer_hold=0.05)
        for n in range(30):
            with contextlib.suppress(httpx.RemoteProtocolError):  # a dropped answer is expected here
                submit(sandbox, prompt=f"fox {n}")
        runs.append([(r["outcome"], r["http_status"]) for r in requests_log(sandbox)])
    assert runs[0] == runs[1]
    outcomes = {outcome for outcome, _ in runs[0]}
    assert {"rate_limited", "server_error", "dropped", "answered"} <= outcomes
    always = sandbox_factory(api_faults="rate_limit=1")
    assert submit(always).status_code == 429
    assert submit(always, "none").status_code == 200
    (exempt,) = [r for r in requests_log(always) if r["outcome"] == "answered"]
    assert exempt["faults"] == []
    refused = Process(
        [str(Path(always.args[0])), "sandbox", "--api-faults", "rate_limit=0.8,drop_answer=0.5"],
        env={},
        log_path=Path(always.log_path).with_name("refused.log"),
    )
    refused.start()
    assert refused.proc is not None
    assert refused.proc.wait(30) == 2
    assert "add up to 1.3" in refused.log()


# (fault, the --api-faults rate that rolls it on every request, --answer-hold, the client's timeout, the outcome)
ASKED_ALIKE = [
    ("rate_limit", "rate_limit=1", 120, 10, "rate_limited"),
    ("server_error", "server_error=1", 120, 10, "server_error"),
    ("answer_timeout", "timeout=1", 0.3, 10, "held"),
    ("answer_timeout", "timeout=1", 30, 0.5, "hung_up"),
    ("drop_answer", "drop_answer=1", 120, 10, "dropped"),
]


def answer(sandbox: Process, faults: str | None, prompt: str, timeout: float) -> tuple[int, str | None] | str:
    """What the client got: (status, Retry-After), or how it got nothing."""
    try:
        response = submit(sandbox, faults, timeout=timeout, prompt=prompt)
    except httpx.ReadTimeout:
        return "timed out"
    except httpx.RemoteProtocolError:
        return "disconnected"
    return response.status_code, response.headers.get("retry-after")


@pytest.mark.parametrize(
    ("fault", "rate", "hold", "client_timeout", "outcome"), ASKED_ALIKE, ids=[case[-1] for case in ASKED_ALIKE]
)
def test_a_fault_is_answered_and_logged_alike_whichever_way_it_is_asked_for(
    sandbox_factory: Callable[..., Process],
    tmp_path: Path,
    fault: str,
    rate: str,
    hold: float,
    client_timeout: float,
    outcome: str,
) -> None:
    """The same API fault rolled from --api-faults, named in X-Sandbox-Faults, or named by a prompt marker (the
    header saying `none`, so that no rate adds to it) gets the same answer and the same request log record:
    outcome, status, faults, Retry-After and whether a task was created, in GET /_sandbox/requests and in
    --request-log."""
    log_file = tmp_path / "requests.jsonl"
    sandbox = sandbox_factory(api_faults=rate, seed=3, retry_after=2, answer_hold=hold, request_log=log_file)
    answers = [answer(sandbox, None, "a fox", client_timeout)]
    (rolled,) = wait_for(lambda: (found := requests_log(sandbox)) and found, timeout=10, what="the rolled request")
    # A rolled server_error picks its status: the header and the marker name the same one.
    spec = f"server_error={rolled['http_status']}" if fault == "server_error" else fault
    answers.append(answer(sandbox, spec, "a fox", client_timeout))
    answers.append(answer(sandbox, "none", f"a fox [sandbox:{spec}]", client_timeout))
    records = wait_for(lambda: len(found := requests_log(sandbox)) == 3 and found, timeout=10, what="3 records")
    logged = [
        (r["outcome"], r["http_status"], r["faults"], r["retry_after"], r["task_id"] is not None) for r in records
    ]
    created = outcome not in {"rate_limited", "server_error"}
    assert logged[0][:3] == (outcome, rolled["http_status"], [fault])
    assert logged[0][3:] == (("2", False) if fault == "rate_limit" else (None, created))
    assert logged == [logged[0]] * 3, "asked by rate, by header, by prompt marker"
    assert answers == [answers[0]] * 3, "asked by rate, by header, by prompt marker"
    assert tasks(sandbox) == (3 if created else 0)
    assert [json.loads(line) for line in log_file.read_text().splitlines()] == records
