"""The worker's periodic reconciliation: off without an API key; with one, results enqueue runs like webhooks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

from receiver.dispatch.worker import WorkerContext
from receiver.handlers import Context, Prediction, Registry
from receiver.settings import Secret, Settings
from receiver.store.ledger import open_ledger
from tests.receiver.dispatch_support import harness, run
from tests.support import prediction_body
from wavehook.worker_tasks import Reconciler, periodic_tasks


def test_reconciliation_needs_the_api_key(settings_factory: Callable[..., Settings]) -> None:
    """Without WAVESPEED_API_KEY the worker runs no periodic task; with it, one reconcile task on its interval."""
    assert periodic_tasks(settings_factory()) == []
    (task,) = periodic_tasks(settings_factory(api_key=Secret("wsk-test")))
    assert (task.name, task.interval_seconds) == ("reconcile", 300.0)
    assert task.close is not None


@pytest.mark.usefixtures("backend")  # each ledger backend in turn
def test_a_reconciled_result_enqueues_the_same_runs_as_a_webhook(settings_factory: Callable[..., Settings]) -> None:
    """A prediction left open is fetched, ingested through the worker's ingestor, and its handler run enqueued."""
    registry = Registry()

    @registry.on("bytedance/*", status="completed", name="keep")
    async def keep(prediction: Prediction, ctx: Context) -> None:
        pass

    def provider(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v3/predictions/p1/result"
        data = json.loads(prediction_body("p1", "completed"))
        return httpx.Response(200, json={"code": 200, "message": "success", "data": data})

    settings = settings_factory(api_key=Secret("wsk-test"), base_url="https://api.example.com")

    async def scenario() -> list[dict[str, object]]:
        async with harness(settings, registry) as h:
            h.clock.now = time.time() - 3600  # the webhook never came: open for an hour
            await h.deliver("p1", "processing")
            reconciler = Reconciler(settings, transport=httpx.MockTransport(provider))
            ctx = WorkerContext(settings=settings, ledger=h.ledger, ingestor=h.ingestor, http=h.http)
            await reconciler(ctx)
            await reconciler.close()
            assert h.ledger.runs_enqueued.is_set()  # the worker's dispatcher wakes at once
            return h.runs()

    runs = run(scenario())
    assert [(r["prediction_id"], r["status"], r["handler"], r["state"]) for r in runs] == [
        ("p1", "completed", "keep", "pending")
    ]


def test_the_reconcile_pass_runs_on_one_instance_at_a_time(
    settings_factory: Callable[..., Settings], postgres_url: str
) -> None:
    """On a shared PostgreSQL ledger, a worker whose reconcile lock another instance holds skips the pass
    (no provider call); once the lock is free the pass runs."""
    calls: list[str] = []

    def provider(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        data = json.loads(prediction_body("p1", "completed"))
        return httpx.Response(200, json={"code": 200, "message": "success", "data": data})

    settings = settings_factory(db=postgres_url, api_key=Secret("wsk-test"), base_url="https://api.example.com")

    async def scenario() -> None:
        async with harness(settings, Registry()) as h, await open_ledger(settings) as other:
            h.clock.now = time.time() - 3600
            await h.deliver("p1", "processing")
            reconciler = Reconciler(settings, transport=httpx.MockTransport(provider))
            ctx = WorkerContext(settings=settings, ledger=h.ledger, ingestor=h.ingestor, http=h.http)
            async with other.exclusive("reconcile") as held:
                assert held
                await reconciler(ctx)
                assert calls == []
            await reconciler(ctx)
            await reconciler.close()
            assert calls == ["/api/v3/predictions/p1/result"]

    run(scenario())
