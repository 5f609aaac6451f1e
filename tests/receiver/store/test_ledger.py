"""The ``Ledger`` contract, through the interface only: every backend in ``LEDGER_BACKENDS`` must pass these."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import pytest

from receiver.delivery import parse
from receiver.errors import StorageUnavailable
from receiver.settings import Settings
from receiver.statuses import TERMINAL
from receiver.store.ledger import Ledger, open_ledger
from receiver.store.records import (
    FAILED,
    LOST_LEASE,
    UNKNOWN,
    ClaimedRun,
    Download,
    IngestResult,
    Quarantined,
    RunEnd,
    RunSelection,
)
from receiver.store.sqlite import SQLiteLedger
from tests.conftest import LedgerFactory
from tests.support import prediction_body

NOW = 1_800_000_000.0
MODEL = "bytedance/seedance-v1-lite-t2v-480p"
HANDLERS = ("download", "notify")


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def deliver(
    ledger: Ledger,
    prediction_id: str,
    status: str = "completed",
    *,
    webhook_id: str | None = None,
    now: float = NOW,
    handlers: tuple[str, ...] = HANDLERS,
    **fields: Any,
) -> IngestResult:
    body = prediction_body(prediction_id, status, **fields)
    delivery = parse(body, webhook_id=webhook_id or f"{prediction_id}-{status}")
    return await ledger.ingest(delivery, now=now, handlers=handlers)


async def claim(
    ledger: Ledger,
    owner: str,
    *,
    now: float = NOW,
    limit: int = 10,
    attempts: int = 3,
    handlers: Sequence[str] = HANDLERS,
    after: Mapping[str, Sequence[str]] | None = None,
) -> list[ClaimedRun]:
    return await ledger.claim_runs(
        owner=owner,
        now=now,
        lease_seconds=30.0,
        handlers=handlers,
        max_attempts=dict.fromkeys(handlers, attempts),
        limit=limit,
        after=after,
    )


# -- opening -----------------------------------------------------------------------------------------------------


def test_open_ledger_picks_sqlite_for_a_path(settings_factory: Callable[..., Settings]) -> None:
    """A file path in WAVEHOOK_DB opens the SQLite ledger, creating and migrating the file."""
    settings = settings_factory()

    async def scenario() -> None:
        async with await open_ledger(settings) as ledger:
            assert isinstance(ledger, SQLiteLedger)
        assert settings.db_path.exists()

    run(scenario)


@pytest.mark.parametrize(
    "url", ["postgresql://wavehook:hunter2@127.0.0.1:1/ledger", "postgres://u:hunter2@127.0.0.1:1/d"]
)
def test_an_unreachable_postgres_url_is_refused_clearly_without_echoing_the_password(
    settings_factory: Callable[..., Settings], url: str
) -> None:
    """A PostgreSQL URL picks the PostgreSQL ledger; a server that cannot be reached is StorageUnavailable,
    naming the server with its password masked."""
    with pytest.raises(StorageUnavailable) as refused:
        asyncio.run(open_ledger(settings_factory(db=url, busy_timeout_ms=1000)))
    message = str(refused.value)
    assert "PostgreSQL ledger at postgres" in message
    assert ":***@127.0.0.1:1/" in message
    assert "hunter2" not in message


# -- committed, idempotent, never backwards ----------------------------------------------------------------------


def test_a_committed_ingest_is_seen_by_another_ledger_on_the_same_storage(ledger_factory: LedgerFactory) -> None:
    """Once ``ingest`` returns, the delivery is committed: a second ledger (another process) reads it."""

    async def scenario() -> None:
        async with ledger_factory() as writer, ledger_factory() as other:
            result = await deliver(writer, "p1")
            assert (result.duplicate, result.applied, result.runs_enqueued) == (False, True, 2)
            found = await other.get_prediction("p1")
            assert found is not None
            assert (found["status"], found["model"], found["outputs"]) == (
                "completed",
                MODEL,
                ["https://cdn.example.com/p1/output.mp4"],
            )
            assert [event["webhook_id"] for event in found["events"]] == ["p1-completed"]
            assert sorted(run["handler"] for run in found["handler_runs"]) == list(HANDLERS)

    run(scenario)


def test_the_same_delivery_twice_is_stored_once_and_enqueues_once(ledger_factory: LedgerFactory) -> None:
    """A repeated (webhook-id, body) is a duplicate; another body under the same id is kept, flagged conflict."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            first = await deliver(ledger, "p1")
            again = await deliver(ledger, "p1", now=NOW + 1)
            other = await deliver(ledger, "p1", now=NOW + 2, executionTime=3.2)
            assert again == IngestResult(event_id=first.event_id, duplicate=True)
            assert (other.duplicate, other.conflict, other.runs_enqueued) == (False, True, 0)
            found = await ledger.get_prediction("p1")
            assert found is not None
            assert [event["duplicates"] for event in found["events"]] == [1, 0]
            assert len(found["handler_runs"]) == 2

    run(scenario)


def test_a_prediction_never_moves_backwards(ledger_factory: LedgerFactory) -> None:
    """A late non-final status after a final one is stored, not applied; handlers only follow a final status."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            assert (await deliver(ledger, "p1", "processing")).runs_enqueued == 0
            assert (await deliver(ledger, "p1", "completed")).applied
            late = await deliver(ledger, "p1", "processing", webhook_id="p1-late")
            assert (late.duplicate, late.applied) == (False, False)
            state = await ledger.prediction_state("p1")
            assert state is not None
            assert (state["status"], state["status_rank"]) == ("completed", TERMINAL)

    run(scenario)


def test_runs_enqueued_is_set_by_an_ingest_that_enqueued_runs(ledger_factory: LedgerFactory) -> None:
    """The wake-up: set when an ingest enqueued runs, left alone when it enqueued none."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            await deliver(ledger, "p1", "processing")
            assert not ledger.runs_enqueued.is_set()
            await deliver(ledger, "p1", "completed")
            assert ledger.runs_enqueued.is_set()

    run(scenario)


def test_quarantine_counts_repeats(ledger_factory: LedgerFactory) -> None:
    """The same refused body for the same reason is one row with a count, shown with its prediction."""
    item = Quarantined("w1", b'{"id":"p1"}', "h1", reason="stale_timestamp", detail="too old", prediction_id="p1")

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            first = await ledger.quarantine(item, now=NOW)
            assert await ledger.quarantine(item, now=NOW + 1) == first
            await deliver(ledger, "p1")
            found = await ledger.get_prediction("p1")
            assert found is not None
            (kept,) = found["quarantined"]
            assert (kept["count"], kept["reason"], kept["body"]) == (2, "stale_timestamp", '{"id":"p1"}')
            assert (await ledger.stats(now=NOW)).quarantined == [("stale_timestamp", 2)]

    run(scenario)


# -- meta ------------------------------------------------------------------------------------------------------


def test_meta_keeps_the_first_value_and_the_secret_is_shared(ledger_factory: LedgerFactory) -> None:
    """``set_meta_if_absent`` keeps the first value; every ledger on the storage gets the same correlation secret."""

    async def scenario() -> None:
        async with ledger_factory() as one, ledger_factory() as two:
            assert await one.get_meta("k") is None
            assert await one.set_meta_if_absent("k", "first") == "first"
            assert await two.set_meta_if_absent("k", "second") == "first"
            assert await two.get_meta("k") == "first"
            secret = await one.correlation_secret()
            assert len(secret) >= 32
            assert await two.correlation_secret() == secret
            await one.probe_write(now=NOW)
            assert await two.get_meta("ready_probe") == repr(NOW)  # the readiness probe really wrote

    run(scenario)


# -- handler runs ----------------------------------------------------------------------------------------------


def test_concurrent_claims_never_share_a_run(ledger_factory: LedgerFactory) -> None:
    """Owners claiming at once through two ledgers get disjoint runs that together cover every due run."""

    async def scenario() -> None:
        async with ledger_factory() as one, ledger_factory() as two:
            for n in range(10):
                await deliver(one, f"p{n}")
            batches = await asyncio.gather(
                *(claim(ledger, f"w{n}", limit=3) for n in range(4) for ledger in (one, two))
            )
            ids = [run.id for batch in batches for run in batch]
            assert len(ids) == len(set(ids)) == 20
            assert all(run.attempt == 1 and not run.exhausted for batch in batches for run in batch)
            assert all(run.prediction["id"] == run.prediction_id for batch in batches for run in batch)

    run(scenario)


def test_leases_renew_finish_and_release_only_for_their_owner(ledger_factory: LedgerFactory) -> None:
    """Renewal, finish and release change a run only while the caller holds its lease."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            await deliver(ledger, "p1")
            first, second = await claim(ledger, "w1")
            assert await ledger.renew_leases(owner="w2", run_ids=[first.id], lease_until=NOW + 99) == set()
            renewed = await ledger.renew_leases(owner="w1", run_ids=[first.id, second.id], lease_until=NOW + 99)
            assert renewed == {first.id, second.id}
            done = RunEnd(state="succeeded", outcome="succeeded", duration_ms=1.5)
            assert not await ledger.finish_run(first, done, owner="w2", now=NOW + 1)
            assert await ledger.finish_run(first, done, owner="w1", now=NOW + 1)
            assert await ledger.release_runs([second], owner="w2", now=NOW + 1) == 0
            assert await ledger.release_runs([second], owner="w1", now=NOW + 1) == 1
            finished = await ledger.get_run(first.id)
            released = await ledger.get_run(second.id)
            assert finished is not None
            assert released is not None
            assert (finished["state"], [a["outcome"] for a in finished["attempt_history"]]) == (
                "succeeded",
                ["succeeded"],
            )
            assert (released["state"], released["attempts"]) == ("pending", 0)
            assert [run.id for run in await claim(ledger, "w3", now=NOW + 1)] == [second.id]

    run(scenario)


def test_an_expired_lease_is_taken_over_and_the_last_attempt_dies(ledger_factory: LedgerFactory) -> None:
    """A run whose owner stopped renewing is claimed again; with no attempt left it comes back already dead."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            await deliver(ledger, "p1", handlers=("download",))
            (lost,) = await claim(ledger, "crashed", attempts=1)
            assert await claim(ledger, "w2", now=NOW + 29, attempts=1) == []
            (taken,) = await claim(ledger, "w2", now=NOW + 31, attempts=1)
            assert (taken.id, taken.exhausted) == (lost.id, True)
            row = await ledger.get_run(lost.id)
            assert row is not None
            assert (row["state"], row["last_error"]) == ("dead", LOST_LEASE)

    run(scenario)


def test_replay_restarts_finished_runs_only(ledger_factory: LedgerFactory) -> None:
    """A dry run changes nothing; a replay makes dead and succeeded runs pending, never a running one."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            await deliver(ledger, "p1")
            dead, running = await claim(ledger, "w1")
            await ledger.finish_run(dead, RunEnd(state="dead", outcome="failed", error="x"), owner="w1", now=NOW)
            ledger.runs_enqueued.clear()
            dry = await ledger.replay_runs(RunSelection(prediction_id="p1"), now=NOW + 5, dry_run=True)
            assert (dry.would_replay, dry.replayed, [r["id"] for r in dry.left_alone]) == ([dead.id], [], [running.id])
            assert not ledger.runs_enqueued.is_set()
            done = await ledger.replay_runs(RunSelection(dead=True), now=NOW + 5)
            assert done.replayed == [dead.id]
            assert ledger.runs_enqueued.is_set()
            row = await ledger.get_run(dead.id)
            assert row is not None
            assert (row["state"], row["attempts"], row["replays"], row["next_at"]) == ("pending", 0, 1, NOW + 5)
            assert (await ledger.replay_runs(RunSelection(run_id=999), now=NOW)).matched == []

    run(scenario)


def test_runs_are_listed_newest_first_with_filters_and_a_cursor(ledger_factory: LedgerFactory) -> None:
    """Filters combine; ``before_id`` continues a listing."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            await deliver(ledger, "p1")
            await deliver(ledger, "p2", now=NOW + 10)
            every = await ledger.list_runs()
            assert [run["id"] for run in every] == sorted((run["id"] for run in every), reverse=True)
            assert {run["prediction_id"] for run in await ledger.list_runs(prediction_id="p2")} == {"p2"}
            assert [run["handler"] for run in await ledger.list_runs(handler="notify")] == ["notify", "notify"]
            assert await ledger.list_runs(state="dead") == []
            assert len(await ledger.list_runs(since=NOW + 5)) == 2
            page = await ledger.list_runs(limit=3)
            rest = await ledger.list_runs(before_id=page[-1]["id"])
            assert [run["id"] for run in page + rest] == [run["id"] for run in every]
            assert await ledger.get_run(12345) is None

    run(scenario)


# -- predictions, downloads, stats ---------------------------------------------------------------------------------


def test_predictions_are_listed_filtered_and_counted(ledger_factory: LedgerFactory) -> None:
    """Newest-updated first, by status and model, paged by the (updated_at, id) cursor."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            await deliver(ledger, "a", now=NOW)
            await deliver(ledger, "b", "failed", now=NOW + 1)
            await deliver(ledger, "c", now=NOW + 2, model="other/model")
            assert [p["id"] for p in await ledger.list_predictions()] == ["c", "b", "a"]
            assert [p["id"] for p in await ledger.list_predictions(status="completed")] == ["c", "a"]
            assert [p["id"] for p in await ledger.list_predictions(model=MODEL)] == ["b", "a"]
            assert [p["id"] for p in await ledger.list_predictions(since=NOW + 1)] == ["c", "b"]
            first = (await ledger.list_predictions(limit=1))[0]
            after = await ledger.list_predictions(before=(first["updated_at"], first["id"]))
            assert [p["id"] for p in after] == ["b", "a"]
            assert await ledger.count_predictions() == 3
            assert await ledger.count_predictions(status="completed", model=MODEL) == 1
            assert await ledger.models() == [MODEL, "other/model"]
            assert await ledger.models_of(["a", "c", "nope"]) == {"a": MODEL, "c": "other/model"}
            assert await ledger.get_prediction("nope") is None
            assert await ledger.prediction_state("nope") is None

    run(scenario)


def test_downloads_are_recorded_once_per_url(ledger_factory: LedgerFactory) -> None:
    """Recording the same (prediction, URL) again replaces the copy; each copy is found by id and listed."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            await deliver(ledger, "p1")
            await ledger.record_download(Download("p1", "u", "/m/a.mp4", 10, "0" * 64, "video/mp4"), now=NOW)
            await ledger.record_download(Download("p1", "u", "/m/b.mp4", 12, "1" * 64, "video/mp4"), now=NOW + 1)
            (kept,) = await ledger.list_downloads("p1")
            assert (kept["path"], kept["size"], kept["downloaded_at"]) == ("/m/b.mp4", 12, NOW + 1)
            assert await ledger.get_download(kept["id"]) == kept
            assert await ledger.get_download(kept["id"] + 1) is None
            found = await ledger.get_prediction("p1")
            assert found is not None
            assert found["downloads"] == [kept]

    run(scenario)


def test_stats_agree_with_what_was_stored(ledger_factory: LedgerFactory) -> None:
    """Counts per model and status, runs per handler and state, the outbox and its oldest pending age."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            await deliver(ledger, "a")
            await deliver(ledger, "b", "processing")
            parsed = parse(prediction_body("c"), webhook_id="reconcile-c", source="reconcile")
            await ledger.ingest(parsed, now=NOW + 10, handlers=())
            stats = await ledger.stats(now=NOW + 60)
            assert stats.predictions == [(MODEL, "completed", 2), (MODEL, "processing", 1)]
            assert stats.runs == [("download", "pending", 1), ("notify", "pending", 1)]
            assert (stats.outbox_depth, stats.oldest_pending_age, stats.missed_webhooks) == (2, 60.0, 1)
            assert stats.as_json()["dead_runs"] == 0

    run(scenario)


# -- submissions -----------------------------------------------------------------------------------------------


def test_a_submission_is_recorded_before_sending_and_merged_either_order(ledger_factory: LedgerFactory) -> None:
    """Begin once; tie to the task (never with a final status); one task never goes to two submissions."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            begin: dict[str, Any] = {
                "job_key": "k1",
                "model": MODEL,
                "input_json": '{"prompt":"a fox"}',
                "webhook_url": None,
            }
            assert await ledger.begin_submission(reference="wh_1", now=NOW, **begin)
            assert not await ledger.begin_submission(reference="wh_1", now=NOW, **begin)
            assert [s["reference"] for s in await ledger.doubtful_submissions(sent_before=NOW + 1)] == ["wh_1"]
            assert await ledger.submissions_by_job_keys(["k1", "k2"]) == {"k1": await ledger.get_submission("wh_1")}
            task = {"id": "p1", "status": "completed", "created_at": "2026-11-21T10:00:00.000Z"}
            assert await ledger.record_submitted(reference="wh_1", prediction=task, resolved_by="response", now=NOW)
            state = await ledger.prediction_state("p1")
            assert state is not None
            assert (state["status"], state["reference"]) == ("created", "wh_1")
            assert await ledger.owned_prediction_ids(["p1", "p2"]) == {"p1"}
            assert await ledger.begin_submission(reference="wh_2", now=NOW, **(begin | {"job_key": "k2"}))
            assert not await ledger.record_submitted(reference="wh_2", prediction=task, resolved_by="lookup", now=NOW)
            await ledger.record_submission_outcome(reference="wh_2", state=UNKNOWN, error="lost", now=NOW + 1)
            await ledger.record_submission_outcome(reference="wh_1", state=FAILED, error="late", now=NOW + 1)
            first, second = await ledger.get_submission("wh_1"), await ledger.get_submission("wh_2")
            assert first is not None
            assert second is not None
            assert (first["state"], second["state"], second["error"]) == ("submitted", UNKNOWN, "lost")
            assert await ledger.open_predictions(seen_before=NOW + 1, seen_after=NOW - 1) == [
                {
                    "id": "p1",
                    "model": MODEL,
                    "status": "created",
                    "reference": "wh_1",
                    "submitted_at": NOW,
                    "first_seen_at": NOW,
                }
            ]

    run(scenario)


def test_a_webhook_carrying_a_reference_is_found_by_it(ledger_factory: LedgerFactory) -> None:
    """The reference a webhook URL carried ties the task to its submission, before any submit answer."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            delivery = parse(prediction_body("p9"), webhook_id="w9", reference="wh_9")
            await ledger.ingest(delivery, now=NOW)
            assert await ledger.prediction_with_reference("wh_9") == "p9"
            assert await ledger.prediction_with_reference("wh_0") is None

    run(scenario)


def test_a_closed_ledger_refuses_writes(ledger_factory: LedgerFactory) -> None:
    """After ``close``, a write is refused as storage unavailable (503), never silently dropped."""

    async def scenario() -> None:
        async with ledger_factory() as ledger:
            pass
        with pytest.raises(StorageUnavailable):
            await deliver(ledger, "p1")

    run(scenario)
