"""The benchmark's account of wavehook's group statements on PostgreSQL, read from a real server's statistics."""

from __future__ import annotations

import time

import psycopg
import pytest
import uvloop
from bench.database import Groups, GroupStatistics, enable, median_groups
from bench.report import Round
from psycopg.rows import dict_row

from receiver.delivery import parse
from receiver.store.postgres.ingest import RecordDelivery


def _group(first: int, size: int) -> list[RecordDelivery]:
    bodies = [
        (f"p{n}", f'{{"id": "p{n}", "status": "completed", "model": "m"}}'.encode()) for n in range(first, first + size)
    ]
    return [
        RecordDelivery(
            parse(body, webhook_id=f"w-{pid}"), now=time.time(), terminal_statuses=("completed",), handlers=[]
        )
        for pid, body in bodies
    ]


async def _store(url: str, groups: int, size: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        for number in range(groups):
            await RecordDelivery.run_batch(conn, _group(number * size, size))


@pytest.mark.integration
def test_each_group_statement_is_counted_and_timed_once_its_backend_reports(postgres_url: str) -> None:
    """Between two snapshots: as many statements as groups were stored, each with its time in the server and
    the time of the WAL flushes its commit waited for (the statistics ``enable`` turned on)."""
    enable(postgres_url)
    statistics = GroupStatistics(postgres_url)
    before = statistics.snapshot()
    uvloop.run(_store(postgres_url, groups=7, size=4))  # its session ends: everything it did is reported
    groups = statistics.between(before, statistics.snapshot(), elapsed=2.0)
    assert groups is not None
    assert groups.per_second == 3.5  # 7 statements over 2 s: the statements counted, not the deliveries
    assert 0 < groups.statement_ms < 1000
    assert 0 < groups.flush_ms < 1000
    assert groups.interval_ms() == pytest.approx(1000 / 3.5)
    nothing = statistics.between(before, before, elapsed=2.0)
    assert nothing is None


@pytest.mark.integration
def test_a_rounds_account_waits_for_a_session_that_stays_open_to_report_it(postgres_url: str) -> None:
    """A pooled session that stays open reports late (at most once a second, the rest once it has been idle
    ``IDLE_REPORT``): the account read at ``finish`` has every group of the round, not the first alone."""
    enable(postgres_url)
    statistics = GroupStatistics(postgres_url)
    measured = Round(1.0, 1.0, 1.0, 1.0, 0.5, 0.1, 10, 0, exhausted=False)

    async def one_round() -> None:
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True, row_factory=dict_row) as conn:
            statistics.round_starts()
            for group in range(5):
                await RecordDelivery.run_batch(conn, _group(10 * group, 2))
            statistics.round_ends(measured, elapsed=2.0)
            statistics.finish()  # while the session is still open

    uvloop.run(one_round())
    assert measured.groups is not None
    assert measured.groups.per_second == 2.5


def test_medians_of_rounds_leave_out_rounds_without_an_account() -> None:
    rounds = [Groups(300.0, 1.0, 0.3), None, Groups(400.0, 1.4, 0.2), Groups(350.0, 1.2, 0.4)]
    assert median_groups(rounds) == Groups(350.0, 1.2, 0.3)
    assert median_groups([None, None]) is None
