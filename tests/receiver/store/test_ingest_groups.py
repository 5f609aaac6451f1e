"""Deliveries that arrive together are committed together (one group: one transaction on SQLite, one statement
on PostgreSQL) and each still gets the answer it would get alone: a duplicate in the same group is a
duplicate, a second body under one webhook-id is a conflict, two statuses of one prediction apply in order,
and a refused delivery is refused alone, writing nothing, while the rest of its group commits."""

from __future__ import annotations

import asyncio
from typing import Any

from receiver.delivery import Delivery, parse
from receiver.errors import TokenMismatch
from receiver.store.ledger import Ledger
from tests.conftest import LedgerFactory
from tests.support import prediction_body

NOW = 1_800_000_000.0
MODEL = "bytedance/seedance-v1-lite-t2v-480p"
HANDLERS = ("download", "notify")


def _delivery(
    prediction_id: str, status: str, webhook_id: str, *, reference: str | None = None, **fields: Any
) -> Delivery:
    return parse(prediction_body(prediction_id, status, **fields), webhook_id=webhook_id, reference=reference)


async def _own(ledger: Ledger, reference: str, prediction_id: str) -> None:
    """A prediction this service submitted under ``reference``."""
    await ledger.begin_submission(
        reference=reference, job_key=None, model=MODEL, input_json='{"prompt":"a fox"}', webhook_url=None, now=NOW
    )
    task = {"id": prediction_id, "status": "created", "created_at": "2026-11-21T10:00:00.000Z"}
    assert await ledger.record_submitted(reference=reference, prediction=task, resolved_by="response", now=NOW)


async def _group(ledger: Ledger, deliveries: list[Delivery]) -> list[Any]:
    """Ingest ``deliveries`` at once: started in one turn of the loop, they wait for the same commit."""
    return await asyncio.gather(
        *(ledger.ingest(d, now=NOW + i, handlers=HANDLERS) for i, d in enumerate(deliveries)), return_exceptions=True
    )


def test_a_group_of_deliveries_gets_the_answers_each_would_get_alone(ledger_factory: LedgerFactory) -> None:
    async def scenario() -> None:
        async with ledger_factory() as ledger:
            await _own(ledger, "wh_owned", "p-owned")
            writer = ledger.writer  # type: ignore[attr-defined]
            commits = writer.commits
            results = await _group(
                ledger,
                [
                    _delivery("p1", "processing", "w1"),
                    _delivery("p1", "completed", "w2"),
                    _delivery("p1", "completed", "w2"),  # the same delivery again: a duplicate
                    _delivery("p2", "completed", "w3"),
                    _delivery("p2", "completed", "w3", executionTime=3.2),  # another body, same id: a conflict
                    _delivery("p-owned", "completed", "w4", reference="wh_stolen"),  # not its job's ref: refused
                    _delivery("p3", "completed", "w5", reference="wh_owned"),  # another job's ref: refused
                    _delivery("p4", "completed", "w6"),
                    _delivery("p4", "processing", "w7"),  # late: stored, not applied
                ],
            )
            assert writer.commits - commits == 1, "one group, one commit"
            first, completed, again, p2, conflict, stolen, borrowed, p4, late = results
            assert (first.applied, first.runs_enqueued) == (True, 0)
            assert (completed.applied, completed.runs_enqueued) == (True, 2)
            assert (again.duplicate, again.event_id) == (True, completed.event_id)
            assert (p2.applied, p2.conflict, p2.runs_enqueued) == (True, False, 2)
            assert (conflict.duplicate, conflict.conflict, conflict.runs_enqueued) == (False, True, 0)
            assert isinstance(stolen, TokenMismatch), stolen
            assert isinstance(borrowed, TokenMismatch), borrowed
            assert "belongs to another prediction" in str(borrowed)
            assert (p4.applied, late.applied, late.duplicate) == (True, False, False)
            ids = [r.event_id for r in (first, completed, p2, conflict, p4, late)]
            assert ids == sorted(ids), "events are stored in the order the deliveries arrived"

            found = await ledger.get_prediction("p1")
            assert found is not None
            assert found["status"] == "completed"
            assert [(e["webhook_id"], e["duplicates"]) for e in found["events"]] == [("w1", 0), ("w2", 1)]
            assert sorted(run["handler"] for run in found["handler_runs"]) == list(HANDLERS)
            owned = await ledger.get_prediction("p-owned")
            assert owned is not None
            assert (owned["status"], owned["events"]) == ("created", []), "a refused delivery writes nothing"
            assert await ledger.get_prediction("p3") is None
            state = await ledger.prediction_state("p4")
            assert state is not None
            assert state["status"] == "completed"

    asyncio.run(scenario())


def test_deliveries_started_together_share_commits(ledger_factory: LedgerFactory) -> None:
    """Forty deliveries started together take far fewer commits than deliveries: the group commit is real."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            writer = ledger.writer  # type: ignore[attr-defined]
            before = writer.commits
            results = await _group(ledger, [_delivery(f"g{i}", "completed", f"gw{i}") for i in range(40)])
            assert all(r.applied and r.runs_enqueued == 2 for r in results), results
            assert writer.commits - before <= 10, writer.commits - before
            stats = await ledger.stats(now=NOW + 60)
            assert sum(count for _model, _status, count in stats.predictions) == 40

    asyncio.run(scenario())
