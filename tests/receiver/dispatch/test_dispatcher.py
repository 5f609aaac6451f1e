"""The dispatcher in process: claims, outcomes, backoff, dead-lettering, leases and shutdown, on a real ledger."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from receiver.handlers import Context, Prediction, Registry, RetryLater
from receiver.settings import DispatchSettings, Settings
from receiver.store.records import LOST_LEASE, RunEnd
from tests.receiver.dispatch_support import MODEL, harness, run

# Runs on every ledger backend (SQLite, PostgreSQL): see ``settings_factory``.
pytestmark = pytest.mark.usefixtures("backend")


def _settings(factory: Callable[..., Settings], **dispatch: Any) -> Settings:
    options = {"retry_base_seconds": 10.0, "retry_max_seconds": 1000.0, "max_attempts": 3, "lease_seconds": 30.0}
    return factory(dispatch=DispatchSettings(**(options | dispatch)))


def test_each_handler_runs_once_per_outcome(settings_factory: Callable[..., Settings]) -> None:
    """Duplicates and a second burst never run a handler again once its run succeeded."""
    registry = Registry()
    calls: list[tuple[str, str]] = []

    @registry.on("bytedance/*", name="async_one")
    async def async_one(prediction: Prediction, ctx: Context) -> None:
        calls.append(("async_one", prediction.id))

    @registry.on("bytedance/seedance-*", status="completed", name="sync_one")
    def sync_one(prediction: Prediction, ctx: Context) -> None:
        calls.append(("sync_one", prediction.id))

    async def scenario() -> None:
        async with harness(_settings(settings_factory), registry) as h:
            for pid in ("p1", "p2", "p3"):
                await h.deliver(pid)
                await h.deliver(pid)  # the same delivery again
            await h.deliver("p4", "failed")
            dispatcher = h.dispatcher()
            first = await dispatcher.run_once()
            second = await dispatcher.run_once()
            assert (first.claimed, first.succeeded) == (7, 7)
            assert second.claimed == 0
            assert {r["state"] for r in h.runs()} == {"succeeded"}

    run(scenario())
    assert sorted(calls) == sorted(
        [(name, pid) for pid in ("p1", "p2", "p3") for name in ("async_one", "sync_one")] + [("async_one", "p4")]
    )


def test_handler_gets_a_read_only_prediction_and_its_context(settings_factory: Callable[..., Settings]) -> None:
    """The prediction carries the ledger's fields, frozen; ctx carries the attempt and the settings."""
    registry = Registry()
    seen: dict[str, Any] = {}

    @registry.on("*", name="inspect")
    def inspect(prediction: Prediction, ctx: Context) -> None:
        seen.update(prediction=prediction, attempt=ctx.attempt, settings=ctx.settings)
        seen["thread"] = threading.current_thread()

    async def scenario() -> None:
        async with harness(_settings(settings_factory), registry) as h:
            await h.deliver("p1", timings={"inference": 1234})
            await h.dispatcher().run_once()

    run(scenario())
    prediction = seen["prediction"]
    assert (prediction.id, prediction.model, prediction.status) == ("p1", MODEL, "completed")
    assert prediction.outputs == ("https://cdn.example.com/p1/output.mp4",)
    assert prediction.input["duration"] == 5
    assert prediction.timings["inference"] == 1234
    assert prediction.has_nsfw_contents == (False,)
    assert prediction.created_at is not None
    assert prediction.created_at.year == 2026
    with pytest.raises(TypeError):
        prediction.input["prompt"] = "changed"  # type: ignore[index]
    assert seen["attempt"] == 1
    assert seen["settings"].dispatch.max_attempts == 3
    assert seen["thread"] is not threading.main_thread()


def test_failures_back_off_growing_then_the_run_is_dead(settings_factory: Callable[..., Settings]) -> None:
    """Each failure schedules a later retry, each delay longer; after the last attempt the run is dead."""
    registry = Registry()

    @registry.on("*", name="always_fails")
    async def always_fails(prediction: Prediction, ctx: Context) -> None:
        raise ValueError(f"cannot handle {prediction.id}")

    async def scenario() -> None:
        async with harness(_settings(settings_factory, max_attempts=4), registry) as h:
            await h.deliver("p1")
            dispatcher = h.dispatcher()
            delays = []
            for _attempt in range(3):
                assert (await dispatcher.run_once()).retried == 1
                assert (await dispatcher.run_once()).claimed == 0  # not due yet
                (row,) = h.runs()
                delays.append(row["next_at"] - h.clock())
                h.clock.advance(delays[-1])
            assert delays == sorted(delays)
            assert delays[0] < delays[-1]
            assert delays == pytest.approx([25 / 3, 50 / 3, 100 / 3])  # jitter 0.5: (2 + 0.5) / 3 of base·2ⁿ⁻¹
            assert (await dispatcher.run_once()).dead == 1
            (row,) = h.runs()
            assert row["state"] == "dead"
            assert row["attempts"] == 4
            assert row["last_error"] == "ValueError: cannot handle p1"
            history = h.attempts(row["id"])
            assert [a["outcome"] for a in history] == ["failed"] * 4
            assert "raise ValueError" in history[-1]["traceback"]
            assert all(a["duration_ms"] is not None for a in history)

    run(scenario())


def test_retry_later_uses_the_requested_delay(settings_factory: Callable[..., Settings]) -> None:
    """RetryLater(delay=) schedules the next attempt that many seconds later and counts as an attempt."""
    registry = Registry()

    @registry.on("*", name="not_yet")
    async def not_yet(prediction: Prediction, ctx: Context) -> None:
        if ctx.attempt == 1:
            raise RetryLater("upstream busy", delay=42)

    async def scenario() -> None:
        async with harness(_settings(settings_factory), registry) as h:
            await h.deliver("p1")
            dispatcher = h.dispatcher()
            assert (await dispatcher.run_once()).retried == 1
            (row,) = h.runs()
            assert row["next_at"] - h.clock() == 42
            assert row["last_error"] == "retry requested: upstream busy"
            h.clock.advance(42)
            assert (await dispatcher.run_once()).succeeded == 1
            assert [a["outcome"] for a in h.attempts(row["id"])] == ["retry", "succeeded"]

    run(scenario())


def test_a_handler_past_its_timeout_fails_the_attempt(settings_factory: Callable[..., Settings]) -> None:
    """An async handler that outlives its timeout is cancelled and the attempt recorded as a timeout."""
    registry = Registry()

    @registry.on("*", name="slow", timeout=0.05, max_attempts=1)
    async def slow(prediction: Prediction, ctx: Context) -> None:
        await asyncio.sleep(10)

    async def scenario() -> None:
        async with harness(_settings(settings_factory), registry) as h:
            await h.deliver("p1")
            assert (await h.dispatcher().run_once()).dead == 1
            (row,) = h.runs()
            assert "timeout of 0.05 s" in row["last_error"]
            assert h.attempts(row["id"])[0]["outcome"] == "timeout"

    run(scenario())


def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_finish(
    settings_factory: Callable[..., Settings],
) -> None:
    """A run whose worker stopped renewing is retried after its lease; the late worker's finish is refused."""
    registry = Registry()
    calls: list[int] = []

    @registry.on("*", name="h")
    async def h_(prediction: Prediction, ctx: Context) -> None:
        calls.append(ctx.attempt)

    async def scenario() -> None:
        async with harness(_settings(settings_factory, lease_seconds=5), registry) as h:
            await h.deliver("p1")
            claim: dict[str, Any] = {"handlers": ["h"], "max_attempts": {"h": 3}, "limit": 10, "lease_seconds": 5}
            (dead_worker_run,) = await h.ledger.claim_runs(owner="crashed", now=h.clock(), **claim)
            dispatcher = h.dispatcher()
            assert (await dispatcher.run_once()).claimed == 0  # the lease still holds
            h.clock.advance(5)
            assert (await dispatcher.run_once()).succeeded == 1
            late_end = RunEnd(state="dead", outcome="failed", error="late")
            late = await h.ledger.finish_run(dead_worker_run, late_end, owner="crashed", now=h.clock())
            assert late is False
            (row,) = h.runs()
            assert (row["state"], row["attempts"], row["last_error"]) == ("succeeded", 2, None)
            assert [a["outcome"] for a in h.attempts(row["id"])] == ["failed", "succeeded"]

    run(scenario())
    assert calls == [2]


def test_a_lost_lease_on_the_last_attempt_makes_the_run_dead(settings_factory: Callable[..., Settings]) -> None:
    """When the worker running the last attempt dies, the run is dead rather than run a further time."""
    registry = Registry()

    @registry.on("*", name="h", max_attempts=1)
    async def h_(prediction: Prediction, ctx: Context) -> None:
        raise AssertionError("must not run again")

    async def scenario() -> None:
        async with harness(_settings(settings_factory, lease_seconds=5), registry) as h:
            await h.deliver("p1")
            claim: dict[str, Any] = {"handlers": ["h"], "max_attempts": {"h": 1}, "limit": 10, "lease_seconds": 5}
            await h.ledger.claim_runs(owner="crashed", now=h.clock(), **claim)
            h.clock.advance(6)
            counts = await h.dispatcher().run_once()
            assert (counts.claimed, counts.dead) == (1, 1)
            (row,) = h.runs()
            assert row["state"] == "dead"
            assert row["last_error"] == LOST_LEASE
            assert [a["outcome"] for a in h.attempts(row["id"])] == ["lost"]

    run(scenario())


def test_runs_of_handlers_this_process_lacks_are_left_alone(settings_factory: Callable[..., Settings]) -> None:
    """A dispatcher claims only runs of the handlers it has loaded."""
    mine, theirs = Registry(), Registry()

    @theirs.on("*", name="elsewhere")
    async def elsewhere(prediction: Prediction, ctx: Context) -> None:
        pass

    async def scenario() -> None:
        async with harness(_settings(settings_factory), theirs) as h:
            await h.deliver("p1")
            h.handlers = mine.select(h.settings)
            assert (await h.dispatcher().run_once()).claimed == 0
            assert h.runs()[0]["state"] == "pending"

    run(scenario())


def test_committed_runs_wake_the_running_dispatcher_at_once(settings_factory: Callable[..., Settings]) -> None:
    """A delivery's runs start without waiting for the poll interval, and every run logs one line."""
    registry = Registry()
    started = asyncio.Event()

    @registry.on("*", name="quick")
    async def quick(prediction: Prediction, ctx: Context) -> None:
        started.set()

    async def scenario() -> float:
        async with harness(_settings(settings_factory, poll_seconds=60), registry) as h:
            dispatcher = h.dispatcher()
            dispatcher.start()
            await asyncio.sleep(0.05)  # let it reach its idle wait
            begin = time.perf_counter()
            await h.deliver("p1")
            await asyncio.wait_for(started.wait(), 5)
            elapsed = time.perf_counter() - begin
            await dispatcher.stop()
            return elapsed

    with capture_logs() as logs:
        elapsed = run(scenario())
    assert elapsed < 1.0
    (line,) = [entry for entry in logs if entry["event"] == "handler_run"]
    assert line["outcome"] == "succeeded"
    assert (line["handler"], line["prediction_id"], line["model"], line["attempt"]) == ("quick", "p1", MODEL, 1)
    assert isinstance(line["duration_ms"], float)


def test_stop_waits_for_the_grace_period_then_releases(settings_factory: Callable[..., Settings]) -> None:
    """On shutdown a quick handler finishes; one still running after the grace period is released as pending."""
    registry = Registry()
    quick_done = threading.Event()
    stuck_started = asyncio.Event()

    @registry.on("*", name="stuck")
    async def stuck(prediction: Prediction, ctx: Context) -> None:
        stuck_started.set()
        await asyncio.sleep(60)

    @registry.on("*", name="quick")
    async def quick(prediction: Prediction, ctx: Context) -> None:
        await asyncio.sleep(0.05)
        quick_done.set()

    async def scenario() -> None:
        async with harness(_settings(settings_factory, shutdown_grace_seconds=0.3), registry) as h:
            dispatcher = h.dispatcher()
            dispatcher.start()
            await h.deliver("p1")
            await asyncio.wait_for(stuck_started.wait(), 5)
            await dispatcher.stop()
            by_handler = {r["handler"]: r for r in h.runs()}
            assert by_handler["quick"]["state"] == "succeeded"
            assert (by_handler["stuck"]["state"], by_handler["stuck"]["attempts"]) == ("pending", 0)
            assert by_handler["stuck"]["lease_owner"] is None
            assert h.attempts(by_handler["stuck"]["id"])[0]["outcome"] == "released"

    run(scenario())
    assert quick_done.is_set()


def test_a_handler_outliving_its_lease_keeps_the_run(settings_factory: Callable[..., Settings]) -> None:
    """While a handler runs, its lease is renewed, so another dispatcher never takes the run over."""
    registry = Registry()
    calls: list[int] = []
    started = asyncio.Event()

    @registry.on("*", name="long")
    async def long(prediction: Prediction, ctx: Context) -> None:
        calls.append(ctx.attempt)
        started.set()
        await asyncio.sleep(1.6)  # over twice the lease

    async def scenario() -> tuple[int, int]:
        async with harness(_settings(settings_factory, lease_seconds=0.6), registry) as h:
            h.clock.now = time.time()
            await h.deliver("p1")
            first = h.dispatcher(clock=time.time)
            other = h.dispatcher(clock=time.time)
            running = asyncio.create_task(first.run_once())
            await asyncio.wait_for(started.wait(), 5)
            stolen = 0
            while not running.done():
                stolen += (await other.run_once()).claimed
                await asyncio.sleep(0.1)
            return (await running).succeeded, stolen

    assert run(scenario()) == (1, 0)
    assert calls == [1]


def _stubborn(registry: Registry, started: asyncio.Event, **options: Any) -> None:
    """A handler that swallows the first cancellation and carries on (as `except BaseException: pass` does)."""

    @registry.on("*", name="stubborn", **options)
    async def stubborn(prediction: Prediction, ctx: Context) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(3600)


@pytest.mark.timeout(30)
def test_a_handler_that_swallows_cancellation_still_times_out(settings_factory: Callable[..., Settings]) -> None:
    """Past its timeout the attempt ends as a timeout and frees its slot, even though the handler ignored the
    cancellation; the dispatcher goes on with other runs."""
    registry = Registry()
    _stubborn(registry, asyncio.Event(), timeout=0.1, max_attempts=1)

    async def scenario() -> None:
        async with harness(_settings(settings_factory), registry) as h:
            await h.deliver("p1")
            counts = await asyncio.wait_for(h.dispatcher().run_once(), 10)
            assert counts.dead == 1
            (row,) = h.runs()
            assert h.attempts(row["id"])[0]["outcome"] == "timeout"

    run(scenario())


@pytest.mark.timeout(30)
def test_shutdown_is_not_held_by_a_handler_that_swallows_cancellation(
    settings_factory: Callable[..., Settings],
) -> None:
    """stop() returns soon after the grace period, and the run is released, though its handler ignored the
    cancellation."""
    registry = Registry()
    started = asyncio.Event()
    _stubborn(registry, started)

    async def scenario() -> None:
        async with harness(_settings(settings_factory, shutdown_grace_seconds=0.2), registry) as h:
            dispatcher = h.dispatcher()
            dispatcher.start()
            await h.deliver("p1")
            await asyncio.wait_for(started.wait(), 5)
            await asyncio.wait_for(dispatcher.stop(), 10)
            (row,) = h.runs()
            assert (row["state"], row["lease_owner"]) == ("pending", None)

    run(scenario())


def test_without_a_client_one_is_made_when_a_run_first_needs_it(settings_factory: Callable[..., Settings]) -> None:
    """A dispatcher given no HTTP client makes none to start (a cold start need not wait for httpx), then one,
    shared by the runs that start together."""
    registry = Registry()
    clients: list[object] = []
    both = asyncio.Event()

    async def record(prediction: Prediction, ctx: Context) -> None:
        clients.append(ctx.http)
        if len(clients) == 2:
            both.set()

    registry.on("*", name="first")(record)
    registry.on("*", name="second")(record)

    async def scenario() -> tuple[object, object]:
        async with harness(_settings(settings_factory), registry) as h:
            idle = h.dispatcher(http=None)
            idle.start()
            await idle.stop()
            made_idle = idle.http
            dispatcher = h.dispatcher(http=None)
            dispatcher.start()
            await h.deliver("p1")
            await asyncio.wait_for(both.wait(), 5)
            await dispatcher.stop()
            assert dispatcher.http is not None
            await dispatcher.http.aclose()
            return made_idle, dispatcher.http

    made_idle, made = run(scenario())
    assert made_idle is None
    assert clients == [made, made]
