"""The submitter's queries (``receiver/store/submissions.py``) on every backend: intent before sending, the merge
with webhooks in either order, ownership of tasks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from receiver.delivery import parse
from receiver.settings import Settings
from receiver.store.ledger import Ledger
from receiver.store.records import FAILED, UNKNOWN
from tests.conftest import LedgerFactory
from tests.support import direct

MODEL = "bytedance/seedance-v1-lite-t2v-480p"
SENT = {"prompt": "a fox", "duration": 5}


@pytest.fixture
def db(ledger_settings: Callable[..., Settings]) -> str:
    """Where the test's ledger is (``ledger_factory`` opens fresh storage of each backend in turn)."""
    return ledger_settings().db


def run(scenario: Any) -> None:
    asyncio.run(scenario())


async def begin(ledger: Ledger, reference: str = "wh_1", job_key: str | None = None, now: float = 100.0) -> bool:
    return await ledger.begin_submission(
        reference=reference,
        job_key=job_key,
        model=MODEL,
        input_json=json.dumps(SENT),
        webhook_url=f"https://h.example/webhooks/wavespeed?ref={reference}&token=t",
        now=now,
    )


async def webhook(ledger: Ledger, status: str, reference: str | None = "wh_1") -> None:
    body = json.dumps({"id": "p1", "model": MODEL, "status": status, "input": {"prompt": "a fox"}}).encode()
    await ledger.ingest(parse(body, webhook_id=f"p1-{status}", reference=reference), now=150.0, handlers=("notify",))


async def submitted(ledger: Ledger, reference: str = "wh_1", status: str = "created") -> bool:
    return await ledger.record_submitted(
        reference=reference,
        prediction={"id": "p1", "status": status, "created_at": "2026-11-21T10:00:00.000Z"},
        resolved_by="response",
        now=200.0,
    )


def stored(db: str) -> dict[str, Any]:
    """The prediction's row as stored (the seam redacts its webhook URL's token)."""
    return dict(direct(db).execute("SELECT * FROM predictions WHERE id = 'p1'").fetchone())


async def state(ledger: Ledger, reference: str) -> str:
    found = await ledger.get_submission(reference)
    assert found is not None
    return str(found["state"])


def test_submit_answer_first_then_webhook(ledger_factory: LedgerFactory, db: str) -> None:
    """Recorded as created with every submission column; the webhook then completes it."""

    async def scenario() -> None:
        async with ledger_factory() as it:
            assert await begin(it)
            assert await submitted(it)
            first = stored(db)
            assert first["status"] == "created"
            assert json.loads(first["input"]) == SENT
            assert (first["reference"], first["submitted_at"]) == ("wh_1", 100.0)
            assert first["webhook_url"].endswith("ref=wh_1&token=t")
            await webhook(it, "completed")
            assert stored(db)["status"] == "completed"
            assert await state(it, "wh_1") == "submitted"

    run(scenario)


def test_webhook_first_then_submit_answer_never_moves_status_back(ledger_factory: LedgerFactory, db: str) -> None:
    """The race: a completed webhook recorded before the submit answer stays completed, and gains the
    submission's columns (input as sent, webhook URL, reference, submitted time) when the answer lands."""

    async def scenario() -> None:
        async with ledger_factory() as it:
            assert await begin(it)
            await webhook(it, "completed", reference=None)
            assert await submitted(it)
            merged = stored(db)
            assert merged["status"] == "completed"
            assert json.loads(merged["input"]) == SENT
            assert merged["reference"] == "wh_1"
            assert merged["submitted_at"] == 100.0
            assert merged["webhook_url"].startswith("https://h.example/")
            assert len(await it.list_runs(prediction_id="p1")) == 1

    run(scenario)


def test_final_status_in_a_submit_answer_is_left_to_ingest(ledger_factory: LedgerFactory, db: str) -> None:
    """A submit answer never writes a final status itself: only the ingest path does, with its handler runs."""

    async def scenario() -> None:
        async with ledger_factory() as it:
            assert await begin(it)
            assert await submitted(it, status="completed")
            assert stored(db)["status"] == "created"
            assert await it.list_runs(prediction_id="p1") == []

    run(scenario)


def test_one_task_one_owner(ledger_factory: LedgerFactory) -> None:
    """A task tied to one submission (or brought by a webhook with its reference) cannot be tied to another."""

    async def scenario() -> None:
        async with ledger_factory() as it:
            assert await begin(it, "wh_1")
            assert await begin(it, "wh_2")
            assert await submitted(it, "wh_1")
            assert not await submitted(it, "wh_2")
            assert await state(it, "wh_2") == "sending"
            assert await it.owned_prediction_ids(["p1", "p2"]) == {"p1"}
            assert await it.owned_prediction_ids([]) == set()

    run(scenario)


def test_webhook_with_reference_is_found(ledger_factory: LedgerFactory) -> None:
    """A doubtful submission whose webhook arrived is found by its reference, and owns that task."""

    async def scenario() -> None:
        async with ledger_factory() as it:
            assert await begin(it)
            await webhook(it, "processing")
            assert await it.prediction_with_reference("wh_1") == "p1"
            assert await it.owned_prediction_ids(["p1"]) == {"p1"}

    run(scenario)


def test_only_failed_submissions_may_be_sent_again(ledger_factory: LedgerFactory) -> None:
    """begin refuses a reference that is sending, unknown or submitted; a failed one is sent again."""

    async def scenario() -> None:
        async with ledger_factory() as it:
            assert await begin(it, job_key="job-1")
            assert not await begin(it, job_key="job-1")
            await it.record_submission_outcome(reference="wh_1", state=UNKNOWN, error="lost", now=101.0)
            assert not await begin(it, job_key="job-1")
            assert [s["reference"] for s in await it.doubtful_submissions(sent_before=200.0)] == ["wh_1"]
            assert await it.doubtful_submissions(sent_before=50.0) == []
            await it.record_submission_outcome(reference="wh_1", state=FAILED, error="none", now=102.0)
            assert await begin(it, job_key="job-1", now=300.0)
            again = await it.get_submission("wh_1")
            assert again is not None
            assert (again["state"], again["attempts"], again["sent_at"], again["error"]) == ("sending", 2, 300.0, None)
            assert (await it.submissions_by_job_keys(["job-1", "job-2"]))["job-1"]["reference"] == "wh_1"
            assert await it.submissions_by_job_keys([]) == {}

    run(scenario)


def test_submitted_is_never_marked_otherwise(ledger_factory: LedgerFactory) -> None:
    """A late failure report does not undo a submission already tied to its task."""

    async def scenario() -> None:
        async with ledger_factory() as it:
            assert await begin(it)
            assert await submitted(it)
            await it.record_submission_outcome(reference="wh_1", state=FAILED, error="late", now=300.0)
            assert await state(it, "wh_1") == "submitted"

    run(scenario)


def test_open_predictions_window(ledger_factory: LedgerFactory) -> None:
    """Open predictions are listed by their submitted time within the window; final ones never."""

    async def scenario() -> None:
        async with ledger_factory() as it:
            assert await begin(it)
            assert await submitted(it)
            assert [r["id"] for r in await it.open_predictions(seen_before=150.0, seen_after=0.0)] == ["p1"]
            assert await it.open_predictions(seen_before=90.0, seen_after=0.0) == []
            await webhook(it, "completed")
            assert await it.open_predictions(seen_before=150.0, seen_after=0.0) == []
            expected = {"status": "completed", "status_rank": 2, "reference": "wh_1"}
            assert await it.prediction_state("p1") == expected

    run(scenario)
