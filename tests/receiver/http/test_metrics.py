"""/metrics: delivery counters and latency from the webhook path, the ledger's numbers at scrape time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from receiver.delivery import parse
from receiver.handlers.registry import Registry
from receiver.http.metrics import MULTIPROC_ENV, PENDING_LIMIT, Metrics, prepare_multiprocess, remove_multiprocess
from receiver.settings import Settings
from receiver.store.records import LedgerStats
from tests.receiver.web_support import Clock, deliver, failing_handlers, ingest, web_client
from tests.support import Process, prediction_body, signed_headers, wait_for

# Runs on every ledger backend (SQLite, PostgreSQL): see ``settings_factory``.
pytestmark = pytest.mark.usefixtures("backend")

T2V = "bytedance/seedance-v1-lite-t2v-480p"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(text: str) -> Samples:
    """Every sample by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metrics(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return scrape(response.text)


def test_deliveries_are_counted_by_outcome_and_reason(settings_factory: Callable[..., Settings], secret: str) -> None:
    """Accepted, duplicate and rejected deliveries each count under their outcome; rejections under their reason."""
    with web_client(settings_factory()) as client:
        deliver(client, secret, "p1")
        deliver(client, secret, "p1")  # the same webhook-id and body: a duplicate
        deliver(client, secret, "p2")
        assert client.post("/webhooks/wavespeed", content=b"{}").status_code == 401
        bad = signed_headers(secret, b"{}", webhook_id="w", timestamp=int(client.app.state.receiver.clock()))  # type: ignore[attr-defined]
        assert client.post("/webhooks/wavespeed", content=b"{}", headers=bad).status_code == 400
        found = metrics(client)
    deliveries = "wavehook_deliveries_total"
    assert found[(deliveries, (("outcome", "accepted"), ("reason", "none")))] == 2
    assert found[(deliveries, (("outcome", "duplicate"), ("reason", "none")))] == 1
    assert found[(deliveries, (("outcome", "rejected"), ("reason", "missing_header")))] == 1
    assert found[(deliveries, (("outcome", "rejected"), ("reason", "missing_id")))] == 1
    assert found[("wavehook_ingest_seconds_count", ())] == 3
    assert found[("wavehook_ingest_seconds_bucket", (("le", "+Inf"),))] == 3


def test_deliveries_counted_before_prometheus_is_loaded_are_all_rendered() -> None:
    """Deliveries counted before the counters take prometheus-client's form (past PENDING_LIMIT, or at the first
    scrape) are all in the scrape, as are those counted after."""
    empty = LedgerStats([], [], [], [], missed_webhooks=0, outbox_depth=0, oldest_pending_age=None)
    for before in (3, PENDING_LIMIT + 2):
        counter = Metrics()
        for _ in range(before):
            counter.delivery("accepted", seconds=0.002)
        counter.delivery("rejected", reason="stale_timestamp")
        loaded = counter.load()
        assert counter.load() is loaded
        counter.delivery("accepted", seconds=0.5)
        found = scrape(counter.render(empty).decode())
        assert found[("wavehook_deliveries_total", (("outcome", "accepted"), ("reason", "none")))] == before + 1
        assert found[("wavehook_deliveries_total", (("outcome", "rejected"), ("reason", "stale_timestamp")))] == 1
        assert found[("wavehook_ingest_seconds_bucket", (("le", "0.0025"),))] == before
        assert found[("wavehook_ingest_seconds_count", ())] == before + 1


def test_ledger_numbers_are_read_at_scrape_time(settings_factory: Callable[..., Settings], secret: str) -> None:
    """Predictions by model and status, the outbox, its oldest pending run and missed webhooks come from the ledger."""
    settings = settings_factory(dispatch_in_web=False)
    registry = Registry()
    registry.on("*", status="completed", name="notify")(lambda _p, _c: None)
    clock = Clock()
    with web_client(settings, clock=clock, handlers=registry.select(settings)) as client:
        deliver(client, secret, "a", model=T2V)
        deliver(client, secret, "b", "failed", model=T2V)
        # A result that reconciliation fetched because its webhook never came.
        missed = parse(prediction_body("c", model=T2V), webhook_id="reconcile-c", source="reconcile")
        ingest(client, missed)
        clock.now += 90
        found = metrics(client)
    assert found[("wavehook_predictions", (("model", T2V), ("status", "completed")))] == 2
    assert found[("wavehook_predictions", (("model", T2V), ("status", "failed")))] == 1
    assert found[("wavehook_missed_webhooks_total", ())] == 1
    assert found[("wavehook_outbox_depth", ())] == 2
    assert found[("wavehook_outbox_oldest_pending_age_seconds", ())] == 90
    assert found[("wavehook_handler_runs", (("handler", "notify"), ("state", "pending")))] == 2


def test_handler_runs_and_attempts_by_handler_and_outcome(
    settings_factory: Callable[..., Settings], secret: str
) -> None:
    """A run that died shows as a dead run and a failed attempt of its handler."""
    settings = settings_factory()
    with web_client(settings, handlers=failing_handlers(settings)) as client:
        deliver(client, secret, "p1")
        found = wait_for(
            lambda: (
                (m := metrics(client)).get(("wavehook_handler_runs", (("handler", "boom"), ("state", "dead")))) and m
            ),
            what="the dead run in /metrics",
        )
    assert found[("wavehook_handler_attempts_total", (("handler", "boom"), ("outcome", "failed")))] == 1
    assert found[("wavehook_outbox_depth", ())] == 0
    assert found[("wavehook_outbox_oldest_pending_age_seconds", ())] == 0


def test_multiprocess_directory_is_prepared_only_for_several_workers(tmp_path: Path) -> None:
    """One worker needs no shared directory; several get a fresh one, and a user's own setting is kept."""
    environ: dict[str, str] = {}
    assert prepare_multiprocess(1, environ) is None
    path = prepare_multiprocess(2, environ)
    assert path is not None
    assert path.is_dir()
    assert environ[MULTIPROC_ENV] == str(path)
    remove_multiprocess(path)
    assert not path.exists()
    assert prepare_multiprocess(4, {MULTIPROC_ENV: str(tmp_path)}) is None


@pytest.mark.integration
def test_counters_add_up_over_several_workers(serve_factory: Callable[..., Process], secret: str) -> None:
    """With `serve --workers 2`, every scrape counts the deliveries that either worker accepted."""
    server = serve_factory(workers=2)
    total = 24
    for n in range(total):
        body = prediction_body(f"p{n}")
        # A new connection each time, so the kernel spreads them over both workers.
        with httpx.Client(base_url=server.url) as client:  # type: ignore[attr-defined]
            response = client.post(
                "/webhooks/wavespeed", content=body, headers=signed_headers(secret, body, webhook_id=f"w{n}")
            )
            assert response.status_code == 200
    key = ("wavehook_deliveries_total", (("outcome", "accepted"), ("reason", "none")))
    for _ in range(6):
        with httpx.Client(base_url=server.url) as client:  # type: ignore[attr-defined]
            found = scrape(client.get("/metrics").text)
        assert found[key] == total
        assert found[("wavehook_predictions", (("model", T2V), ("status", "completed")))] == total


@pytest.mark.integration
def test_serve_warns_when_no_admin_token_is_set(serve_factory: Callable[..., Process]) -> None:
    """`wavehook serve` without WAVEHOOK_ADMIN_TOKEN says at start that only loopback clients are served."""
    server = serve_factory()
    wait_for(lambda: "WAVEHOOK_ADMIN_TOKEN is not set" in server.log(), what="the start-up warning")
