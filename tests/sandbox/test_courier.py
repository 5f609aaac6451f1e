"""Webhook delivery in process, to a scripted receiver: signatures, retries with backoff, and every fault."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from receiver.errors import SignatureError
from receiver.settings import Secret
from receiver.signature import Verifier
from sandbox.courier import STALE_BY_SECONDS
from tests.conftest import SECRET
from tests.sandbox.conftest import HOOK, ScriptedReceiver, deliveries, settle, submit

VERIFIER = Verifier([Secret(SECRET)], tolerance_seconds=300)


def verified(headers: dict[str, str], body: bytes) -> bool:
    try:
        VERIFIER.verify(headers, body)
    except SignatureError:
        return False
    return True


def kinds(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["kind"], r["outcome"]) for r in records]


def test_final_webhook_is_signed_prediction_without_envelope(sandbox_app: Callable[..., TestClient]) -> None:
    """One delivery per task end: the prediction object with its input, signed v3 so the receiver's verifier agrees."""
    receiver = ScriptedReceiver()
    client = sandbox_app(receiver)
    task = submit(client, inputs={"prompt": "a fox", "duration": 6})
    settle(client)
    (hit,) = receiver.hits
    assert hit.url == HOOK
    assert verified(hit.headers, hit.body)
    assert hit.headers["webhook-id"] == task["id"]  # the documented example's choice, the default
    assert abs(int(hit.headers["webhook-timestamp"]) - time.time()) < 5
    body = json.loads(hit.body)
    assert (body["id"], body["status"], body["input"]) == (task["id"], "completed", {"prompt": "a fox", "duration": 6})
    assert body["outputs"] == [f"http://testserver/media/outputs/{task['id']}/output.mp4"]
    assert "code" not in body
    assert kinds(deliveries(client)) == [("genuine", "accepted")]


def test_failed_task_sends_a_failed_webhook(sandbox_app: Callable[..., TestClient]) -> None:
    """A task asked to fail sends one webhook with status failed and its error."""
    receiver = ScriptedReceiver()
    client = sandbox_app(receiver)
    submit(client, faults="fail")
    settle(client)
    body = json.loads(receiver.hits[0].body)
    assert (body["status"], body["outputs"]) == ("failed", [])
    assert body["error"]


def test_retries_repeat_the_same_delivery_with_growing_pauses(sandbox_app: Callable[..., TestClient]) -> None:
    """500, a timeout and a refused connection are retried with the same id, timestamp, body and signature."""
    receiver = ScriptedReceiver([500, httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), 503])
    client = sandbox_app(receiver, retry_initial=0.02, retry_max=1.0)
    submit(client)
    settle(client)
    records = deliveries(client)
    assert [r["outcome"] for r in records] == ["refused", "error", "error", "refused", "accepted"]
    assert [r["attempt"] for r in records] == [1, 2, 3, 4, 5]
    assert [r["http_status"] for r in records] == [500, None, None, 503, 200]
    assert "no answer within" in records[1]["error"]
    assert "ConnectError" in records[2]["error"]
    assert len({(r["webhook_id"], r["timestamp"], r["body_sha256"]) for r in records}) == 1
    first, last = receiver.hits[0], receiver.hits[-1]
    assert (first.body, first.headers["webhook-signature"]) == (last.body, last.headers["webhook-signature"])
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(records)]
    assert gaps[3] > gaps[0]  # exponential: the fourth pause (>= 0.12 s) outlasts the first (<= 0.02 s)


def test_delivery_gives_up_when_the_window_closes(sandbox_app: Callable[..., TestClient]) -> None:
    """A receiver that keeps failing gets retries until the window closes, then a gave_up record."""
    receiver = ScriptedReceiver([500] * 1000)
    client = sandbox_app(receiver, retry_initial=0.01, retry_max=0.02, retry_window=0.2)
    submit(client)
    settle(client)
    records = deliveries(client)
    assert records[-1]["outcome"] == "gave_up"
    assert len(records) >= 5
    assert {r["outcome"] for r in records[:-1]} == {"refused"}


def test_duplicate_fault_delivers_the_same_bytes_twice(sandbox_app: Callable[..., TestClient]) -> None:
    """duplicate: after the genuine delivery, the same id, timestamp, body and signature once more."""
    receiver = ScriptedReceiver()
    client = sandbox_app(receiver)
    submit(client, faults="duplicate")
    settle(client)
    first, second = receiver.hits
    assert (first.headers, first.body) == (second.headers, second.body)
    assert kinds(deliveries(client)) == [("genuine", "accepted"), ("duplicate", "accepted")]


@pytest.mark.parametrize(("mode", "same_id"), [("task", True), ("event", False)])
def test_stale_processing_arrives_after_the_final_webhook(
    sandbox_app: Callable[..., TestClient], mode: str, same_id: bool
) -> None:
    """stale_processing: a signed processing webhook, generated earlier, lands after completed; its id follows
    the webhook-id mode (the task id for both events, or one id per event)."""
    receiver = ScriptedReceiver()
    client = sandbox_app(receiver, webhook_id_mode=mode, run_seconds=1.2)
    submit(client, faults="stale_processing")
    settle(client)
    final, stale = receiver.hits
    assert [json.loads(h.body)["status"] for h in (final, stale)] == ["completed", "processing"]
    assert verified(stale.headers, stale.body)
    assert int(stale.headers["webhook-timestamp"]) < int(final.headers["webhook-timestamp"])
    assert (final.headers["webhook-id"] == stale.headers["webhook-id"]) is same_id
    assert json.loads(stale.body)["outputs"] == []


def test_drop_fault_sends_nothing_and_says_so(sandbox_app: Callable[..., TestClient]) -> None:
    """drop: the receiver gets no request; the log has one dropped record for the final event."""
    receiver = ScriptedReceiver()
    client = sandbox_app(receiver)
    submit(client, faults="drop,duplicate")
    settle(client)
    assert receiver.hits == []
    (record,) = deliveries(client)
    assert (record["kind"], record["outcome"], record["event_status"]) == ("dropped", "dropped", "completed")
    assert record["faults"] == ["duplicate", "drop"]


def test_bad_signature_and_stale_timestamp_copies_precede_the_genuine_one(
    sandbox_app: Callable[..., TestClient],
) -> None:
    """bad_signature and stale_timestamp: copies a verifier must refuse, then the genuine delivery."""
    receiver = ScriptedReceiver([401, 401])
    client = sandbox_app(receiver)
    submit(client, faults="bad_signature,stale_timestamp")
    settle(client)
    forged, stale, genuine = receiver.hits
    assert forged.body == stale.body == genuine.body
    assert not verified(forged.headers, forged.body)
    assert int(genuine.headers["webhook-timestamp"]) - int(stale.headers["webhook-timestamp"]) == STALE_BY_SECONDS
    assert not verified(stale.headers, stale.body)  # too old, though correctly signed:
    lenient = Verifier([Secret(SECRET)], tolerance_seconds=10 * STALE_BY_SECONDS)
    lenient.verify(stale.headers, stale.body)
    assert verified(genuine.headers, genuine.body)
    assert kinds(deliveries(client)) == [
        ("bad_signature", "refused"),
        ("stale_timestamp", "refused"),
        ("genuine", "accepted"),
    ]


def test_delay_fault_holds_the_webhook_back(sandbox_app: Callable[..., TestClient]) -> None:
    """delay=0.3: the first attempt comes at least 0.3 s after the task ended."""
    client = sandbox_app(ScriptedReceiver())
    task = submit(client, faults="delay=0.3")
    settle(client)
    (record,) = deliveries(client, task["id"])
    assert (record["outcome"], record["faults"]) == ("accepted", ["delay"])
    finished_at = client.app.state.sandbox.tasks.get(task["id"]).finished_at  # type: ignore[attr-defined]
    assert record["at"] - finished_at >= 0.3


def test_receiver_down_fault_fails_attempts_without_sending(sandbox_app: Callable[..., TestClient]) -> None:
    """receiver_down=0.2: attempts in the first 0.2 s are logged as down and never reach the receiver."""
    receiver = ScriptedReceiver()
    client = sandbox_app(receiver, retry_initial=0.02, retry_max=0.05)
    submit(client, faults="receiver_down=0.2")
    settle(client)
    records = deliveries(client)
    assert records[-1]["outcome"] == "accepted"
    assert {r["outcome"] for r in records[:-1]} == {"down"}
    assert len(records) >= 3
    assert len(receiver.hits) == 1


def test_outage_route_fails_every_attempt_for_a_while(sandbox_app: Callable[..., TestClient]) -> None:
    """POST /_sandbox/outage makes all attempts fail as down until it ends; deliveries then go through."""
    receiver = ScriptedReceiver()
    client = sandbox_app(receiver, retry_initial=0.02, retry_max=0.05)
    assert client.post("/_sandbox/outage", json={"seconds": 0.3}).status_code == 200
    assert client.get("/_sandbox/status").json()["outage_seconds_left"] > 0
    submit(client)
    settle(client)
    outcomes = [r["outcome"] for r in deliveries(client)]
    assert outcomes[0] == "down"
    assert outcomes[-1] == "accepted"
    assert client.post("/_sandbox/outage", json={"seconds": -1}).status_code == 400


def test_run_wide_rates_are_rolled_per_task_and_can_be_changed(sandbox_app: Callable[..., TestClient]) -> None:
    """Rates of 1 give every task the fault, rates of 0 none; PUT /_sandbox/faults replaces them, checked."""
    receiver = ScriptedReceiver()
    client = sandbox_app(receiver, fault_rates={"duplicate": 1.0})
    submit(client)
    settle(client)
    assert kinds(deliveries(client)) == [("genuine", "accepted"), ("duplicate", "accepted")]
    assert client.put("/_sandbox/faults", json={"rates": {"drop": 1}}).json()["rates"] == {"drop": 1.0}
    task = submit(client)
    settle(client)
    assert kinds(deliveries(client, task["id"])) == [("dropped", "dropped")]
    refused = client.put("/_sandbox/faults", json={"rates": {"drop": 2}})
    assert (refused.status_code, "probability" in refused.json()["message"]) == (400, True)
    assert client.get("/_sandbox/faults").json()["rates"] == {"drop": 1.0}


def test_header_faults_override_the_run_rates(sandbox_app: Callable[..., TestClient]) -> None:
    """A request naming its faults gets exactly those, whatever the run's rates."""
    receiver = ScriptedReceiver()
    client = sandbox_app(receiver, fault_rates={"drop": 1.0})
    submit(client, faults="duplicate")
    settle(client)
    assert kinds(deliveries(client)) == [("genuine", "accepted"), ("duplicate", "accepted")]


def test_delivery_log_file_holds_the_same_records(sandbox_app: Callable[..., TestClient], tmp_path: Any) -> None:
    """With a delivery_log path, every record is also appended there as one JSON line."""
    path = tmp_path / "deliveries.jsonl"
    client = sandbox_app(ScriptedReceiver([500]), delivery_log=path)
    submit(client, faults="duplicate")
    settle(client)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == deliveries(client)
    assert [r["seq"] for r in lines] == [1, 2, 3]


def test_no_webhook_without_a_webhook_url(sandbox_app: Callable[..., TestClient]) -> None:
    """A task submitted without ?webhook= is only polled: nothing is sent, nothing logged."""
    receiver = ScriptedReceiver()
    client = sandbox_app(receiver)
    submit(client, webhook=None)
    settle(client)
    assert (receiver.hits, deliveries(client)) == ([], [])
