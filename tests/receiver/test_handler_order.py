"""Handlers that build on each other: ``after=`` orders a prediction outcome's runs, ``ctx.downloads`` shows the
stored outputs, a dead dependency stops its dependents (saying why), replay keeps the order, and cycles or
unknown names stop the start."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from receiver.handlers import RetryLater
from receiver.handlers.context import Context, StoredOutput
from receiver.handlers.errors import HandlerConfigError
from receiver.handlers.prediction import Prediction
from receiver.handlers.registry import Registry
from receiver.settings import DispatchSettings, Settings
from receiver.store.records import Download, RunSelection
from tests.receiver.dispatch_support import harness, run


@pytest.fixture
def settings(backend: str, settings_factory: Callable[..., Settings]) -> Settings:
    """Dispatch settings on a ledger of each backend in turn."""
    return settings_factory(dispatch=DispatchSettings(download=False, log_outcomes=False, retry_base_seconds=5))


def pipeline(calls: list[tuple[str, Any]], *, save_fails: bool = False) -> Registry:
    """save (records a stored copy) then notify (after save), the way a user writes it."""
    registry = Registry()

    @registry.on("*", status="completed", name="save", max_attempts=2)
    async def save(prediction: Prediction, ctx: Context) -> None:
        calls.append(("save", ctx.attempt))
        if save_fails:
            raise RuntimeError("disk full")
        await ctx.record_download(url=prediction.outputs[0], path=f"/media/{prediction.id}.mp4", size=3, sha256="ab")

    @registry.on("*", name="notify", after="save")
    async def notify(prediction: Prediction, ctx: Context) -> None:
        calls.append(("notify", [(d.url, d.location, d.size, d.sha256) for d in ctx.downloads]))

    return registry


def test_a_handler_runs_after_its_dependency_and_sees_the_stored_copy(settings: Settings) -> None:
    """notify is not claimed with save: it runs in a later claim, once save succeeded, and sees ctx.downloads."""
    calls: list[tuple[str, Any]] = []

    async def scenario() -> list[int]:
        async with harness(settings, pipeline(calls)) as h:
            await h.deliver("p1")
            dispatcher = h.dispatcher()
            return [(await dispatcher.run_once()).claimed for _ in range(3)]

    assert run(scenario()) == [1, 1, 0]
    assert calls == [
        ("save", 1),
        ("notify", [("https://cdn.example.com/p1/output.mp4", "/media/p1.mp4", 3, "ab")]),
    ]


def test_a_dependency_that_does_not_apply_holds_nothing_back(settings: Settings) -> None:
    """save runs only on completed; for a failed prediction notify runs at once, with no downloads."""
    calls: list[tuple[str, Any]] = []

    async def scenario() -> None:
        async with harness(settings, pipeline(calls)) as h:
            await h.deliver("p1", "failed", error="out of memory")
            await h.dispatcher().run_once()

    run(scenario())
    assert calls == [("notify", [])]


def test_a_dead_dependency_stops_its_dependents_saying_why(settings: Settings) -> None:
    """When save ends dead, notify never runs: it ends dead with no attempt and an error naming save."""
    calls: list[tuple[str, Any]] = []

    async def scenario() -> list[dict[str, Any]]:
        async with harness(settings, pipeline(calls, save_fails=True)) as h:
            await h.deliver("p1")
            dispatcher = h.dispatcher()
            await dispatcher.run_once()
            h.clock.advance(60)
            await dispatcher.run_once()  # the second and last attempt of save
            await dispatcher.run_once()
            return h.runs()

    runs = {row["handler"]: row for row in run(scenario())}
    assert calls == [("save", 1), ("save", 2)]
    assert (runs["save"]["state"], runs["notify"]["state"], runs["notify"]["attempts"]) == ("dead", "dead", 0)
    assert runs["notify"]["last_error"].startswith("not run: save ended dead")


def test_replay_respects_the_order(settings: Settings) -> None:
    """Replaying the dead dependency gives the never-run dependent its turn again, after it succeeds."""
    calls: list[tuple[str, Any]] = []
    fixed: list[bool] = []
    registry = Registry()

    @registry.on("*", status="completed", name="save", max_attempts=1)
    async def save(prediction: Prediction, ctx: Context) -> None:
        calls.append(("save", ctx.attempt))
        if not fixed:
            raise RuntimeError("disk full")

    @registry.on("*", name="notify", after="save")
    def notify(prediction: Prediction, ctx: Context) -> None:
        calls.append(("notify", ctx.attempt))

    async def scenario() -> list[dict[str, Any]]:
        async with harness(settings, registry) as h:
            await h.deliver("p1")
            dispatcher = h.dispatcher()
            await dispatcher.run_once()
            await dispatcher.run_once()
            (save_run,) = [r for r in h.runs() if r["handler"] == "save"]
            fixed.append(True)
            replayed = await h.ledger.replay_runs(RunSelection(run_id=save_run["id"]), now=h.clock())
            assert len(replayed.replayed) == 2  # save, and notify that never ran because of it
            first = await dispatcher.run_once()
            second = await dispatcher.run_once()
            assert (first.claimed, second.claimed) == (1, 1)
            return h.runs()

    final = run(scenario())
    assert calls == [("save", 1), ("save", 1), ("notify", 1)]
    assert {row["handler"]: row["state"] for row in final} == {"save": "succeeded", "notify": "succeeded"}


def test_a_dependency_retrying_later_holds_its_dependent(settings: Settings) -> None:
    """While save waits for a retry, notify waits too; both succeed in order."""
    calls: list[str] = []
    registry = Registry()
    attempts: list[int] = []

    @registry.on("*", status="completed", name="save")
    def save(prediction: Prediction, ctx: Context) -> None:
        calls.append("save")
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise RetryLater("busy", delay=30)

    @registry.on("*", name="notify", after=["save"])
    def notify(prediction: Prediction, ctx: Context) -> None:
        calls.append("notify")

    async def scenario() -> None:
        async with harness(settings, registry) as h:
            await h.deliver("p1")
            dispatcher = h.dispatcher()
            await dispatcher.run_once()
            assert (await dispatcher.run_once()).claimed == 0  # notify waits for save's retry
            h.clock.advance(31)
            await dispatcher.run_once()
            await dispatcher.run_once()

    run(scenario())
    assert calls == ["save", "save", "notify"]


def test_unknown_names_and_cycles_stop_the_start(settings: Settings) -> None:
    """after= naming no handler, with a did-you-mean; a cycle, spelled out."""
    unknown = Registry()
    unknown.on("*", name="save")(lambda prediction, ctx: None)
    unknown.on("*", name="notify", after="sav")(lambda prediction, ctx: None)
    with pytest.raises(HandlerConfigError, match=r"'notify' runs after='sav', which is no handler; did you mean"):
        unknown.select(settings)
    cycle = Registry()
    cycle.on("*", name="a", after="c")(lambda prediction, ctx: None)
    cycle.on("*", name="b", after="a")(lambda prediction, ctx: None)
    cycle.on("*", name="c", after="b")(lambda prediction, ctx: None)
    with pytest.raises(HandlerConfigError, match=r"cycle: a -> c -> b -> a"):
        cycle.select(settings)


def test_a_disabled_dependency_holds_nothing_back(settings_factory: Callable[..., Settings]) -> None:
    """forward runs after download_outputs; with downloads off it runs alone (and its stored list is empty)."""
    from receiver.handlers.registry import load_handlers

    on = load_handlers(settings_factory(dispatch=DispatchSettings(forward_url="https://x.example/h")))
    off = load_handlers(settings_factory(dispatch=DispatchSettings(download=False, forward_url="https://x.example/h")))
    assert on.after["forward"] == ("download_outputs",)
    assert "forward" not in off.after


def test_stored_output_comes_from_a_download_row() -> None:
    """location is the local path (or object URL) of the kept copy."""
    row = Download("p1", "https://cdn/x.mp4", "/m/x.mp4", 10, "ff", "video/mp4")
    stored = StoredOutput.from_row(
        {"url": row.url, "path": row.path, "size": row.size, "sha256": row.sha256, "content_type": row.content_type}
    )
    assert stored.as_json() == {"url": "https://cdn/x.mp4", "location": "/m/x.mp4", "size": 10, "sha256": "ff"}
