"""API fault specifications: rates, header parts, seeded rolls, and how bad ones are refused."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from sandbox.apifaults import ApiPlan, parse_api_plan, parse_api_rates, roll_api, split
from sandbox.faults import FaultError
from tests.sandbox.conftest import T2V


def test_rates_accept_timeout_for_a_held_answer_and_refuse_more_than_one_in_total() -> None:
    """In --api-faults, timeout means answer_timeout; unknown names and rates adding up past 1 are refused."""
    assert parse_api_rates("rate_limit=0.2, timeout=0.05") == {"rate_limit": 0.2, "answer_timeout": 0.05}
    with pytest.raises(FaultError, match="unknown fault 'slow'"):
        parse_api_rates("slow=0.1")
    with pytest.raises(FaultError, match=r"add up to 1\.2"):
        parse_api_rates("rate_limit=0.7,server_error=0.5")
    with pytest.raises(FaultError, match="is not a probability"):
        parse_api_rates("drop_answer=2")


def test_header_parts_split_into_api_and_task_faults() -> None:
    """A header names both kinds; `timeout` there is the task outcome; `none` exempts."""
    assert split("duplicate, rate_limit=2, timeout, drop_answer") == (
        ["rate_limit=2", "drop_answer"],
        ["duplicate", "timeout"],
        False,
    )
    assert split("none") == ([], [], True)


def test_plans_take_values_and_defaults() -> None:
    """Values override the run's Retry-After and hold; server_error takes only 500, 502 or 503."""
    plan = parse_api_plan(["rate_limit", "answer_timeout=2"], retry_after=1, hold=60, source="header")
    assert (plan.rate_limit, plan.answer_timeout, plan.early) == (1, 2, True)
    assert parse_api_plan(["server_error=503"], retry_after=1, hold=1, source="h").server_error == 503
    with pytest.raises(FaultError, match="server_error='501' is not one of 500, 502, 503"):
        parse_api_plan(["server_error=501"], retry_after=1, hold=1, source="h")
    with pytest.raises(FaultError, match="takes no value"):
        parse_api_plan(["drop_answer=1"], retry_after=1, hold=1, source="h")


def test_rolls_replay_with_a_seed_and_keep_to_their_rates() -> None:
    """The same seed gives the same faults; over many draws each fault comes near its rate."""
    rates = {"rate_limit": 0.2, "server_error": 0.1, "answer_timeout": 0.05, "drop_answer": 0.05}

    def draws(seed: int) -> list[ApiPlan]:
        rng = random.Random(seed)
        return [roll_api(rng, rates, retry_after=1, hold=9) for _ in range(4000)]

    first = draws(3)
    assert first == draws(3)
    share = {name: sum(1 for plan in first if name in plan.names()) / len(first) for name in rates}
    assert all(abs(share[name] - rate) < 0.03 for name, rate in rates.items()), share


def test_drop_answer_in_process_fails_the_request(sandbox_app: Callable[..., TestClient]) -> None:
    """Without a server connection to close (the in-process client), drop_answer fails the request loudly,
    after the task was created."""
    client = sandbox_app()
    with pytest.raises(ConnectionAbortedError, match="drop_answer"):
        client.post(f"/api/v3/{T2V}", json={"prompt": "x"}, headers={"X-Sandbox-Faults": "drop_answer"})
    assert client.get("/_sandbox/status").json()["tasks"] == 1
    bad = client.post(f"/api/v3/{T2V}", json={"prompt": "x"}, headers={"X-Sandbox-Faults": "rate_limit=soon"})
    assert (bad.status_code, "rate_limit='soon'" in bad.json()["message"]) == (400, True)
