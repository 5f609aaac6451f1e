"""Two uvicorn worker processes on one ledger file: nothing lost, nothing doubled."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from receiver.settings import Settings
from tests.integration.receiver_client import Delivery, burst, query, serve
from tests.support import prediction_body, wait_for

# Runs on every ledger backend: two processes on one SQLite file, or on one PostgreSQL database.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("backend")]


def started_pids(log: str) -> set[int]:
    return {json.loads(line)["pid"] for line in log.splitlines() if '"receiver_started"' in line}


def test_two_workers_store_each_delivery_exactly_once(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    """60 deliveries sent three times each, plus 10 conflicting bodies, in a shuffled burst to two workers:
    every answer is 200 and the ledger holds exactly 70 events, 120 duplicates counted and 60 predictions."""
    with serve(tmp_path, workers=2, env={"WAVEHOOK_DB": settings_factory().db}) as server:
        wait_for(lambda: len(started_pids(server.process.log())) == 2, what="both workers to start")
        unique = [Delivery(f"multi-{i}", prediction_body(f"p-multi-{i}", "processing")) for i in range(60)]
        # The same webhook-id with another body (the provider's id may be the task id): a conflict, not a duplicate.
        conflicting = [Delivery(f"multi-{i}", prediction_body(f"p-multi-{i}", "completed")) for i in range(10)]
        sends = unique * 3 + conflicting
        random.Random(7).shuffle(sends)
        results = burst(server.url, sends, threads=16)
        assert results == [200] * len(sends)

        assert query(server.db, "SELECT count(*), sum(duplicates), sum(conflict) FROM events") == [(70, 120, 10)]
        assert query(server.db, "SELECT count(*) FROM predictions") == [(60,)]
        assert query(server.db, "SELECT count(*) FROM predictions WHERE status = 'completed'") == [(10,)]
        lines = [json.loads(line) for line in server.process.log().splitlines()]  # every line whole, JSON
        canonical = [line for line in lines if line["event"] == "webhook_received"]
        assert len(canonical) == len(sends)
        assert sum(1 for line in canonical if line["outcome"] == "accepted") == 70
        assert {line["pid"] for line in canonical} == started_pids(server.process.log())  # both workers wrote
