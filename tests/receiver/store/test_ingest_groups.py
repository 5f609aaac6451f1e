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


def test_a_group_of_different_ids_against_what_is_already_stored(ledger_factory: LedgerFactory) -> None:
    """Every delivery of the group names its own webhook-id and prediction (on PostgreSQL the group is then
    stored in one set-wise statement), while the ledger already holds their earlier deliveries: a repeat is a
    duplicate, a new body under a stored id a conflict, a late status stored but not applied, a wrong or
    borrowed ref refused with nothing written; the rest apply and enqueue, in the order they arrived."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            await _own(ledger, "wh_owned", "p-owned")
            await _group(ledger, [_delivery("q1", "completed", "v1"), _delivery("q2", "completed", "v2")])
            await _group(ledger, [_delivery("q3", "completed", "v3")])
            writer = ledger.writer  # type: ignore[attr-defined]
            commits = writer.commits
            results = await _group(
                ledger,
                [
                    _delivery("n1", "processing", "u1"),
                    _delivery("q1", "completed", "v1"),  # stored before: a duplicate
                    _delivery("q2", "completed", "v2", executionTime=9.9),  # a new body under a stored id
                    _delivery("q3", "processing", "u3"),  # late: q3 is completed
                    _delivery("p-owned", "completed", "u4", reference="wh_stolen"),  # refused
                    _delivery("n5", "completed", "u5", reference="wh_owned"),  # another job's ref: refused
                    _delivery("n6", "completed", "u6"),
                    _delivery("n7", "failed", "u7"),
                ],
            )
            assert writer.commits - commits == 1, "one group, one commit"
            n1, dup, conflict, late, stolen, borrowed, n6, n7 = results
            assert (n1.applied, n1.runs_enqueued, n1.duplicate) == (True, 0, False)
            assert dup.duplicate
            assert (conflict.duplicate, conflict.conflict, conflict.applied, conflict.runs_enqueued) == (
                False,
                True,
                False,
                0,
            )
            assert (late.duplicate, late.applied, late.runs_enqueued) == (False, False, 0)
            assert isinstance(stolen, TokenMismatch), stolen
            assert isinstance(borrowed, TokenMismatch), borrowed
            assert (n6.applied, n6.runs_enqueued, n7.applied, n7.runs_enqueued) == (True, 2, True, 2)
            ids = [r.event_id for r in (n1, conflict, late, n6, n7)]
            assert ids == sorted(ids), "events are stored in the order the deliveries arrived"

            q3 = await ledger.get_prediction("q3")
            assert q3 is not None
            assert q3["status"] == "completed"
            assert [(e["webhook_id"], e["applied"]) for e in q3["events"]] == [("v3", 1), ("u3", 0)]
            q1 = await ledger.get_prediction("q1")
            assert q1 is not None
            assert [e["duplicates"] for e in q1["events"]] == [1]
            owned = await ledger.get_prediction("p-owned")
            assert owned is not None
            assert (owned["status"], owned["events"]) == ("created", [])
            assert await ledger.get_prediction("n5") is None
            n7_row = await ledger.get_prediction("n7")
            assert n7_row is not None
            assert sorted(run["handler"] for run in n7_row["handler_runs"]) == list(HANDLERS)

    asyncio.run(scenario())
