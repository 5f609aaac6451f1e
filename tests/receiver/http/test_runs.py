"""The runs JSON API: list and inspect runs, replay one, replay the dead ones; the web dispatcher picks them up."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from receiver.handlers import Context, Prediction, Registry
from receiver.http.app import create_app
from receiver.settings import DispatchSettings, Secret, Settings
from receiver.store.records import RunEnd
from tests.receiver.web_support import ledger_call
from tests.support import prediction_body, signed_headers, wait_for

# Runs on every ledger backend (SQLite, PostgreSQL): see ``settings_factory``.
pytestmark = pytest.mark.usefixtures("backend")

TOKEN = "admin-token-for-tests-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def _registry(fixed: list[bool]) -> Registry:
    registry = Registry()

    @registry.on("*", name="fragile", max_attempts=1)
    async def fragile(prediction: Prediction, ctx: Context) -> None:
        if not fixed:
            raise RuntimeError("not fixed yet")

    @registry.on("*", status="completed", name="steady")
    async def steady(prediction: Prediction, ctx: Context) -> None:
        pass

    return registry


@pytest.fixture
def client_factory(
    settings_factory: Callable[..., Settings], secret: str
) -> Iterator[Callable[..., tuple[TestClient, list[bool]]]]:
    opened: list[TestClient] = []

    def make(*, dispatch_in_web: bool) -> tuple[TestClient, list[bool]]:
        fixed: list[bool] = []
        settings = settings_factory(
            admin_token=Secret(TOKEN),
            dispatch_in_web=dispatch_in_web,
            dispatch=DispatchSettings(poll_seconds=0.05, download=False, log_outcomes=False),
        )
        app = create_app(settings, handlers=_registry(fixed).select(settings))
        client = TestClient(app, base_url="http://127.0.0.1:8000").__enter__()
        opened.append(client)
        for pid, status in (("p1", "completed"), ("p2", "failed")):
            body = prediction_body(pid, status)
            response = client.post(
                "/webhooks/wavespeed", content=body, headers=signed_headers(secret, body, webhook_id=pid)
            )
            assert response.status_code == 200
        return client, fixed

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def _kill_fragile_runs(client: TestClient) -> None:
    """Claim the fragile runs and finish them dead, as a dispatcher on its last attempt would."""

    claim = {"max_attempts": {"fragile": 1}, "limit": 10, "lease_seconds": 30}
    for run in ledger_call(client, "claim_runs", owner="test", now=time.time(), handlers=["fragile"], **claim):
        dead = RunEnd(state="dead", outcome="failed", error="boom")
        ledger_call(client, "finish_run", run, dead, owner="test", now=time.time())


def test_lists_and_filters_runs(client_factory: Callable[..., tuple[TestClient, list[bool]]]) -> None:
    """GET /api/runs lists newest first, filters by state, handler and prediction, and pages by cursor."""
    client, _fixed = client_factory(dispatch_in_web=False)
    _kill_fragile_runs(client)
    everything = client.get("/api/runs", headers=AUTH).json()
    assert [(r["handler"], r["prediction_id"]) for r in everything["runs"]] == [
        ("fragile", "p2"),
        ("steady", "p1"),
        ("fragile", "p1"),
    ]
    dead = client.get("/api/runs", params={"state": "dead"}, headers=AUTH).json()["runs"]
    assert {r["state"] for r in dead} == {"dead"}
    assert len(dead) == 2
    page = client.get("/api/runs", params={"limit": 2}, headers=AUTH).json()
    rest = client.get("/api/runs", params={"limit": 2, "cursor": page["next_cursor"]}, headers=AUTH).json()
    assert [r["id"] for r in page["runs"] + rest["runs"]] == [r["id"] for r in everything["runs"]]
    only = client.get("/api/runs", params={"handler": "steady", "prediction_id": "p1"}, headers=AUTH).json()["runs"]
    assert [(r["handler"], r["prediction_id"]) for r in only] == [("steady", "p1")]


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        ("/api/runs?state=gone", 400, "state='gone' must be one of pending, running, succeeded, dead"),
        ("/api/runs?limit=0", 400, "limit='0' must be an integer from 1 to 500"),
        ("/api/runs/abc", 400, "run id 'abc' in the path must be an integer from 1 to"),
        ("/api/runs/999", 404, "no handler run with id 999"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    client_factory: Callable[..., tuple[TestClient, list[bool]]], path: str, status: int, fragment: str
) -> None:
    """Malformed filters and unknown runs answer 400/404 with the parameter or id named."""
    client, _fixed = client_factory(dispatch_in_web=False)
    response = client.get(path, headers=AUTH)
    assert response.status_code == status
    assert fragment in response.json()["error"]


def test_replay_one_run(client_factory: Callable[..., tuple[TestClient, list[bool]]]) -> None:
    """A dead run replays to pending with fresh attempts; a pending one answers 409; an unknown one 404."""
    client, _fixed = client_factory(dispatch_in_web=False)
    _kill_fragile_runs(client)
    runs = {(r["handler"], r["prediction_id"]): r for r in client.get("/api/runs", headers=AUTH).json()["runs"]}
    dead_id, pending_id = runs[("fragile", "p1")]["id"], runs[("steady", "p1")]["id"]
    answer = client.post(f"/api/runs/{dead_id}/replay", headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["replayed"] == [dead_id]
    run = client.get(f"/api/runs/{dead_id}", headers=AUTH).json()
    assert (run["state"], run["attempts"], run["replays"]) == ("pending", 0, 1)
    assert [a["outcome"] for a in run["attempt_history"]] == ["failed"]
    conflict = client.post(f"/api/runs/{pending_id}/replay", headers=AUTH)
    assert conflict.status_code == 409
    assert conflict.json()["reason"] == "run_not_ended"
    assert client.post("/api/runs/4242/replay", headers=AUTH).status_code == 404


def test_replay_dead_runs_of_a_handler_with_a_dry_run_first(
    client_factory: Callable[..., tuple[TestClient, list[bool]]],
) -> None:
    """replay-dead?dry_run=true changes nothing; without it every dead run of the handler is pending again."""
    client, _fixed = client_factory(dispatch_in_web=False)
    _kill_fragile_runs(client)
    dry = client.post("/api/runs/replay-dead", params={"handler": "fragile", "dry_run": "true"}, headers=AUTH).json()
    assert dry["replayed"] == []
    assert len(dry["would_replay"]) == 2
    assert len(client.get("/api/runs", params={"state": "dead"}, headers=AUTH).json()["runs"]) == 2
    assert client.post("/api/runs/replay-dead", params={"handler": "steady"}, headers=AUTH).json()["replayed"] == []
    done = client.post("/api/runs/replay-dead", params={"handler": "fragile"}, headers=AUTH).json()
    assert sorted(done["replayed"]) == sorted(dry["would_replay"])
    assert client.get("/api/runs", params={"state": "dead"}, headers=AUTH).json()["runs"] == []


def test_replay_the_finished_runs_of_one_prediction(
    client_factory: Callable[..., tuple[TestClient, list[bool]]],
) -> None:
    """replay?prediction_id= replays that prediction's dead or succeeded runs and needs the id."""
    client, _fixed = client_factory(dispatch_in_web=False)
    _kill_fragile_runs(client)
    done = client.post("/api/runs/replay", params={"prediction_id": "p1"}, headers=AUTH).json()
    assert done["matched"] == 2
    assert len(done["replayed"]) == 1
    assert done["left_alone"] == [{"id": done["left_alone"][0]["id"], "state": "pending"}]
    missing = client.post("/api/runs/replay", headers=AUTH)
    assert missing.status_code == 400
    assert "prediction_id is required" in missing.json()["error"]
    bad = client.post("/api/runs/replay", params={"prediction_id": "p1", "dry_run": "maybe"}, headers=AUTH)
    assert bad.status_code == 400


def test_the_web_dispatcher_runs_replayed_runs(client_factory: Callable[..., tuple[TestClient, list[bool]]]) -> None:
    """Inside the web process, runs go dead after their last attempt and succeed once replayed after a fix."""
    client, fixed = client_factory(dispatch_in_web=True)

    def states() -> dict[str, str]:
        rows = client.get("/api/runs", headers=AUTH).json()["runs"]
        return {f"{r['handler']}:{r['prediction_id']}": r["state"] for r in rows}

    wait_for(lambda: states() == {"fragile:p1": "dead", "fragile:p2": "dead", "steady:p1": "succeeded"}, timeout=10)
    fixed.append(True)
    assert len(client.post("/api/runs/replay-dead", headers=AUTH).json()["replayed"]) == 2
    wait_for(lambda: set(states().values()) == {"succeeded"}, timeout=10, what="replayed runs to succeed")
