"""Reconciling: open predictions fetched from the provider and ingested once, as a webhook would be."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from submitter.service import AsyncSubmitter
from tests.submitter.fake_provider import FakeProvider
from tests.support import direct

# Runs on every ledger backend (SQLite, PostgreSQL): see ``settings_factory``.
pytestmark = pytest.mark.usefixtures("backend")

T2V = "bytedance/seedance-v1-lite-t2v-480p"
Opener = Callable[..., contextlib.AbstractAsyncContextManager[AsyncSubmitter]]


@pytest.mark.anyio
async def test_missed_webhook_found_and_ingested_once(open_submitter: Opener, provider: FakeProvider) -> None:
    """A task that finished without a webhook is ingested through the ingest path (event, status, handler
    run), logged as missed, and a second pass changes nothing."""
    with capture_logs() as logs:
        async with open_submitter() as sub:
            result = await sub.submit(T2V, {"prompt": "a fox"})
            provider.finish("task0001")
            first = await sub.reconcile(older_than=0)
            second = await sub.reconcile(older_than=0)
            settings = sub.settings
    assert (first.checked, first.missed) == (1, 1)
    assert (second.checked, second.missed) == (0, 0)
    conn = direct(settings.db)
    row = conn.execute("SELECT status, reference, outputs FROM predictions WHERE id = 'task0001'").fetchone()
    assert (row["status"], row["reference"]) == ("completed", result.reference)
    assert "output.mp4" in row["outputs"]
    events = conn.execute("SELECT webhook_id, source, reference FROM events").fetchall()
    assert [tuple(e) for e in events] == [("reconcile:task0001:completed", "reconcile", result.reference)]
    runs = conn.execute("SELECT handler, status, state FROM handler_runs").fetchall()
    assert [tuple(r) for r in runs] == [("notify", "completed", "pending")]
    (missed,) = [entry for entry in logs if entry["event"] == "webhook_missed"]
    assert (missed["prediction_id"], missed["status"], missed["runs_enqueued"]) == ("task0001", "completed", 1)


@pytest.mark.anyio
async def test_same_outcome_fetched_again_is_a_duplicate(open_submitter: Opener, provider: FakeProvider) -> None:
    """Ingesting the same fetched outcome twice stores one event and one handler run."""
    async with open_submitter() as sub:
        await sub.submit(T2V, {"prompt": "a fox"})
        body = provider.finish("task0001")
        first = await sub.ingestor.ingest_result(body, reference=None)
        again = await sub.ingestor.ingest_result(dict(reversed(body.items())), reference=None)
        settings = sub.settings
    assert (first.duplicate, first.runs_enqueued, again.duplicate) == (False, 1, True)
    assert direct(settings.db).execute("SELECT count(*) FROM events").fetchone()[0] == 1


@pytest.mark.anyio
async def test_open_progressed_gone_and_young(open_submitter: Opener, provider: FakeProvider) -> None:
    """Still running: counted open; moved to processing: progressed (no run); unknown to the provider: gone;
    younger than older_than: not fetched at all."""
    async with open_submitter() as sub:
        for prompt in ("a", "b", "c"):
            await sub.submit(T2V, {"prompt": prompt})
        assert (await sub.reconcile(older_than=3600)).checked == 0
        provider.tasks["task0002"]["status"] = "processing"
        del provider.tasks["task0003"]
        counts = await sub.reconcile(older_than=0)
        settings = sub.settings
    assert (counts.checked, counts.open, counts.progressed, counts.gone, counts.missed) == (3, 1, 1, 1, 0)
    conn = direct(settings.db)
    assert conn.execute("SELECT status FROM predictions WHERE id = 'task0002'").fetchone()[0] == "processing"
    assert conn.execute("SELECT count(*) FROM handler_runs").fetchone()[0] == 0


@pytest.mark.anyio
async def test_webhook_that_came_is_not_counted_missed(open_submitter: Opener, provider: FakeProvider) -> None:
    """A prediction already final in the ledger is not fetched again."""
    async with open_submitter() as sub:
        result = await sub.submit(T2V, {"prompt": "a fox"})
        # Our job's webhook carries its reference (a delivery for it without one is refused).
        await sub.ingestor.ingest_result(provider.finish("task0001"), reference=result.reference, source="webhook")
        counts = await sub.reconcile(older_than=0)
    assert counts.checked == 0
    assert len([r for r in provider.requests if r.url.path.endswith("/result")]) == 0
