"""The submitter's SQL: intent before sending, the merge with webhooks in either order, ownership of tasks."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from receiver.delivery import parse
from receiver.store import predictions, submissions
from receiver.store.events import record_delivery
from receiver.store.records import FAILED, UNKNOWN

TERMINAL = ("completed", "failed", "cancelled", "timeout")
MODEL = "bytedance/seedance-v1-lite-t2v-480p"
SENT = {"prompt": "a fox", "duration": 5}


def begin(conn: sqlite3.Connection, reference: str = "wh_1", job_key: str | None = None, now: float = 100.0) -> bool:
    return submissions.begin(
        conn,
        reference=reference,
        job_key=job_key,
        model=MODEL,
        input_json=json.dumps(SENT),
        webhook_url=f"https://h.example/webhooks/wavespeed?ref={reference}&token=t",
        now=now,
    )


def webhook(conn: sqlite3.Connection, status: str, reference: str | None = "wh_1") -> None:
    body = json.dumps({"id": "p1", "model": MODEL, "status": status, "input": {"prompt": "a fox"}}).encode()
    delivery = parse(body, webhook_id=f"p1-{status}", reference=reference)
    record_delivery(conn, delivery, now=150.0, terminal_statuses=TERMINAL, handlers=("notify",))


def submitted(conn: sqlite3.Connection, reference: str = "wh_1", status: str = "created") -> bool:
    return submissions.record_submitted(
        conn,
        reference=reference,
        prediction={"id": "p1", "status": status, "created_at": "2026-11-21T10:00:00.000Z"},
        resolved_by="response",
        now=200.0,
        terminal_statuses=TERMINAL,
    )


def row(conn: sqlite3.Connection) -> dict[str, Any]:
    return dict(conn.execute("SELECT * FROM predictions WHERE id = 'p1'").fetchone())


def test_submit_answer_first_then_webhook(conn: sqlite3.Connection) -> None:
    """Recorded as created with every submission column; the webhook then completes it."""
    assert begin(conn)
    assert submitted(conn)
    first = row(conn)
    assert first["status"] == "created"
    assert json.loads(first["input"]) == SENT
    assert (first["reference"], first["submitted_at"]) == ("wh_1", 100.0)
    assert first["webhook_url"].endswith("ref=wh_1&token=t")
    webhook(conn, "completed")
    assert row(conn)["status"] == "completed"
    assert submissions.get(conn, "wh_1")["state"] == "submitted"  # type: ignore[index]


def test_webhook_first_then_submit_answer_never_moves_status_back(conn: sqlite3.Connection) -> None:
    """The race: a completed webhook recorded before the submit answer stays completed, and gains the
    submission's columns (input as sent, webhook URL, reference, submitted time) when the answer lands."""
    assert begin(conn)
    webhook(conn, "completed", reference=None)
    assert submitted(conn)
    merged = row(conn)
    assert merged["status"] == "completed"
    assert json.loads(merged["input"]) == SENT
    assert merged["reference"] == "wh_1"
    assert merged["submitted_at"] == 100.0
    assert merged["webhook_url"].startswith("https://h.example/")
    assert conn.execute("SELECT count(*) FROM handler_runs").fetchone()[0] == 1


def test_final_status_in_a_submit_answer_is_left_to_ingest(conn: sqlite3.Connection) -> None:
    """A submit answer never writes a final status itself: only the ingest path does, with its handler runs."""
    assert begin(conn)
    assert submitted(conn, status="completed")
    assert row(conn)["status"] == "created"


def test_one_task_one_owner(conn: sqlite3.Connection) -> None:
    """A task tied to one submission (or brought by a webhook with its reference) cannot be tied to another."""
    assert begin(conn, "wh_1")
    assert begin(conn, "wh_2")
    assert submitted(conn, "wh_1")
    assert not submitted(conn, "wh_2")
    assert submissions.get(conn, "wh_2")["state"] == "sending"  # type: ignore[index]
    assert submissions.owned_ids(conn, ["p1", "p2"]) == {"p1"}


def test_webhook_with_reference_is_found(conn: sqlite3.Connection) -> None:
    """A doubtful submission whose webhook arrived is found by its reference, and owns that task."""
    assert begin(conn)
    webhook(conn, "processing")
    assert predictions.prediction_with_reference(conn, "wh_1") == "p1"
    assert submissions.owned_ids(conn, ["p1"]) == {"p1"}


def test_only_failed_submissions_may_be_sent_again(conn: sqlite3.Connection) -> None:
    """begin refuses a reference that is sending, unknown or submitted; a failed one is sent again."""
    assert begin(conn, job_key="job-1")
    assert not begin(conn, job_key="job-1")
    submissions.record_outcome(conn, reference="wh_1", state=UNKNOWN, error="lost", now=101.0)
    assert not begin(conn, job_key="job-1")
    assert [s["reference"] for s in submissions.doubtful(conn, sent_before=200.0)] == ["wh_1"]
    assert submissions.doubtful(conn, sent_before=50.0) == []
    submissions.record_outcome(conn, reference="wh_1", state=FAILED, error="none", now=102.0)
    assert begin(conn, job_key="job-1", now=300.0)
    again = submissions.get(conn, "wh_1")
    assert again is not None
    assert (again["state"], again["attempts"], again["sent_at"], again["error"]) == ("sending", 2, 300.0, None)
    assert submissions.by_job_keys(conn, ["job-1", "job-2"])["job-1"]["reference"] == "wh_1"


def test_submitted_is_never_marked_otherwise(conn: sqlite3.Connection) -> None:
    """A late failure report does not undo a submission already tied to its task."""
    assert begin(conn)
    assert submitted(conn)
    submissions.record_outcome(conn, reference="wh_1", state=FAILED, error="late", now=300.0)
    assert submissions.get(conn, "wh_1")["state"] == "submitted"  # type: ignore[index]


def test_open_predictions_window(conn: sqlite3.Connection) -> None:
    """Open predictions are listed by their submitted time within the window; final ones never."""
    assert begin(conn)
    assert submitted(conn)
    assert [r["id"] for r in predictions.open_predictions(conn, seen_before=150.0, seen_after=0.0)] == ["p1"]
    assert predictions.open_predictions(conn, seen_before=90.0, seen_after=0.0) == []
    webhook(conn, "completed")
    assert predictions.open_predictions(conn, seen_before=150.0, seen_after=0.0) == []
    assert predictions.prediction_state(conn, "p1") == {"status": "completed", "status_rank": 2, "reference": "wh_1"}
