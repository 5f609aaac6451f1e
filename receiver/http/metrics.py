"""``GET /metrics``: in-process counters for the webhook path, gauges read from the ledger at scrape time.

The webhook endpoint only increments a counter and observes a histogram (no database work on the hot path).
Everything the ledger already knows (predictions by status, the outbox, dead runs, missed webhooks) is read
from it when scraped, so it is right whichever process answers and whichever process did the work. With
several worker processes, ``wavehook serve`` points prometheus-client's multiprocess mode at a directory so the
delivery counters are summed over every worker.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from receiver.http.state import receiver_state
from receiver.store.records import LedgerStats

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The counters one receiver process keeps; ``render`` adds the ledger's numbers at scrape time."""

    def __init__(self, *, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.deliveries = Counter(
            "wavehook_deliveries",
            "Webhook deliveries answered, by outcome (accepted, duplicate, rejected) and rejection reason.",
            ["outcome", "reason"],
            registry=None,
        )
        self.ingest_seconds = Histogram(
            "wavehook_ingest_seconds",
            "Time from a delivery's arrival to its answer, after its commit (accepted and duplicate deliveries).",
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        # The labelled counters by (outcome, reason), looked up once: labels() costs more than inc().
        self._counters: dict[tuple[str, str], Counter] = {}
        for outcome in ("accepted", "duplicate"):
            self._counters[outcome, "none"] = self.deliveries.labels(outcome, "none")

    def delivery(self, outcome: str, *, reason: str = "none", seconds: float | None = None) -> None:
        counter = self._counters.get((outcome, reason))
        if counter is None:
            counter = self._counters[outcome, reason] = self.deliveries.labels(outcome, reason)
        counter.inc()
        if seconds is not None:
            self.ingest_seconds.observe(seconds)

    def render(self, stats: LedgerStats) -> bytes:
        registry = CollectorRegistry(auto_describe=False)
        if self.multiprocess_dir is not None:
            MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        else:
            registry.register(self.deliveries)
            registry.register(self.ingest_seconds)
        registry.register(LedgerCollector(stats))
        return generate_latest(registry)


class LedgerCollector(Collector):
    """The ledger's numbers as metric families (read beforehand, off the event loop)."""

    def __init__(self, stats: LedgerStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        predictions = GaugeMetricFamily(
            "wavehook_predictions", "Predictions in the ledger by model and status.", labels=["model", "status"]
        )
        for model, status, count in stats.predictions:
            predictions.add_metric([model, status], count)
        runs = GaugeMetricFamily(
            "wavehook_handler_runs", "Handler runs in the ledger by handler and state.", labels=["handler", "state"]
        )
        for handler, state, count in stats.runs:
            runs.add_metric([handler, state], count)
        attempts = CounterMetricFamily(
            "wavehook_handler_attempts",
            "Finished handler attempts by handler and outcome.",
            labels=["handler", "outcome"],
        )
        for handler, outcome, count in stats.attempts:
            attempts.add_metric([handler, outcome], count)
        quarantined = CounterMetricFamily(
            "wavehook_quarantined_deliveries", "Signed deliveries kept in quarantine, by reason.", labels=["reason"]
        )
        for reason, count in stats.quarantined:
            quarantined.add_metric([reason], count)
        yield from (predictions, runs, attempts, quarantined)
        yield GaugeMetricFamily("wavehook_outbox_depth", "Handler runs pending or running.", value=stats.outbox_depth)
        yield GaugeMetricFamily(
            "wavehook_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending handler run (0 when none is pending).",
            value=stats.oldest_pending_age or 0.0,
        )
        yield CounterMetricFamily(
            "wavehook_missed_webhooks",
            "Results that reconciliation fetched because their webhook never came.",
            value=stats.missed_webhooks,
        )


async def metrics(request: Request) -> Response:
    state = receiver_state(request.app)
    stats = await state.ledger.stats(now=state.clock())
    # In multiprocess mode rendering reads every worker's counter files: off the event loop.
    body = await run_in_threadpool(state.metrics.render, stats)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)


def prepare_multiprocess(workers: int, environ: MutableMapping[str, str]) -> Path | None:
    """Before starting several workers: give them a fresh shared directory for their counters.

    prometheus-client reads the variable when first imported, so it must be in the environment the worker
    processes inherit. An existing setting is respected (and left as it is).
    """
    if workers < 2 or environ.get(MULTIPROC_ENV):
        return None
    path = Path(tempfile.mkdtemp(prefix="wavehook-metrics-"))
    environ[MULTIPROC_ENV] = str(path)
    return path


def remove_multiprocess(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
