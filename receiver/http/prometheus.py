"""The delivery counters in prometheus-client's form, and a scrape rendered from them and the ledger's numbers.

Imported when first needed (see ``receiver.http.metrics``): prometheus-client takes a noticeable part of a
cold start to import, and the first deliveries are answered without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from receiver.store.records import LedgerStats

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class DeliveryCounters:
    """One process's delivery counter and latency histogram (in multiprocess mode, backed by its files)."""

    def __init__(self) -> None:
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

    def delivery(self, outcome: str, reason: str, seconds: float | None) -> None:
        counter = self._counters.get((outcome, reason))
        if counter is None:
            counter = self._counters[outcome, reason] = self.deliveries.labels(outcome, reason)
        counter.inc()
        if seconds is not None:
            self.ingest_seconds.observe(seconds)

    def render(self, stats: LedgerStats, multiprocess_dir: Path | None) -> bytes:
        registry = CollectorRegistry(auto_describe=False)
        if multiprocess_dir is not None:
            MultiProcessCollector(registry, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]
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
