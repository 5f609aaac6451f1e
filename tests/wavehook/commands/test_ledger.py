"""``wavehook ledger copy``: a SQLite ledger into PostgreSQL and back, every row and secret kept, idempotent,
resumable, counts verified; the copied ledger answers as the original did and takes new writes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from receiver.delivery import parse
from receiver.settings import Settings
from receiver.store import copy as ledger_copy
from receiver.store.copy import TABLES
from receiver.store.ledger import open_ledger
from receiver.store.records import Download, Quarantined, RunEnd
from tests.support import direct, prediction_body
from wavehook.cli import main

NOW = 1_800_000_000.0
MODEL = "bytedance/seedance-v1-lite-t2v-480p"


async def fill(settings: Settings, predictions: int = 12) -> None:
    """A ledger with something in every table: predictions at every stage, duplicates, a quarantined
    delivery, runs claimed and finished, an attempt, a download and a submission."""
    async with await open_ledger(settings) as ledger:
        for n in range(predictions):
            for status in ("processing", "completed" if n % 3 else "failed"):
                body = prediction_body(f"p{n:03d}", status, model=MODEL)
                await ledger.ingest(parse(body, webhook_id=f"w{n}-{status}"), now=NOW + n, handlers=("keep",))
        await ledger.ingest(parse(prediction_body("p000", "failed"), webhook_id="w0-failed"), now=NOW)
        await ledger.quarantine(Quarantined("wq", b"not json", "ab" * 32, "invalid_json", "broken"), now=NOW)
        runs = await ledger.claim_runs(
            owner="o", now=NOW + 100, lease_seconds=30, handlers=("keep",), max_attempts={"keep": 3}, limit=5
        )
        for run in runs[:3]:
            await ledger.finish_run(run, RunEnd(state="succeeded", outcome="succeeded"), owner="o", now=NOW + 101)
        await ledger.record_download(Download("p001", "https://cdn/x.mp4", "media/x.mp4", 10, "cd" * 32, None), now=NOW)
        await ledger.begin_submission(
            reference="wh_1", job_key="k1", model=MODEL, input_json="{}", webhook_url=None, now=NOW
        )


def rows(db: str | Path, table: str, key: str) -> list[tuple[Any, ...]]:
    with direct(db) as conn:
        return [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY {key}")]  # noqa: S608


def copy(source: str | Path, target: str | Path) -> Result:
    return CliRunner().invoke(main, ["ledger", "copy", str(source), str(target)], catch_exceptions=False)


async def answers(settings: Settings) -> dict[str, Any]:
    async with await open_ledger(settings) as ledger:
        return {
            "list": await ledger.list_predictions(limit=100),
            "one": await ledger.get_prediction("p001"),
            "stats": (await ledger.stats(now=NOW + 200)).as_json(),
            "runs": await ledger.list_runs(),
            "secret": await ledger.correlation_secret(),
            "submission": await ledger.get_submission("wh_1"),
        }


def test_sqlite_to_postgres_and_back_keeps_every_row_and_answer(
    settings_factory: Callable[..., Settings], postgres_databases: Any, tmp_path: Path
) -> None:
    """Every table's rows arrive unchanged (ids included) in PostgreSQL, the API answers the same there, and
    copying back into a new SQLite file gives the original rows again."""
    source = settings_factory(db=str(tmp_path / "source.db"))
    asyncio.run(fill(source))
    url = postgres_databases.create(migrated=False)  # an empty database: the copy creates the schema
    try:
        result = copy(source.db, url)
        assert result.exit_code == 0, result.output
        assert "verified" in result.output
        for table, key in TABLES:
            if table != "meta":
                assert rows(url, table, key) == rows(source.db, table, key), table
        assert asyncio.run(answers(settings_factory(db=url))) == asyncio.run(answers(source))
        back = tmp_path / "back.db"
        result = copy(url, back)
        assert result.exit_code == 0, result.output
        for table, key in TABLES:
            if table != "meta":
                assert rows(back, table, key) == rows(source.db, table, key), table
    finally:
        postgres_databases.drop(url)


def test_copying_again_changes_nothing_and_new_writes_follow_the_copied_ids(
    settings_factory: Callable[..., Settings], postgres_url: str, tmp_path: Path
) -> None:
    """A second copy adds no row (idempotent); a delivery ingested afterwards gets an id past the copied ones."""
    source = settings_factory(db=str(tmp_path / "source.db"))
    asyncio.run(fill(source))
    assert copy(source.db, postgres_url).exit_code == 0
    again = copy(source.db, postgres_url)
    assert again.exit_code == 0, again.output
    counted = [line for line in again.output.splitlines() if line.split(" ")[0] in {t for t, _k in TABLES}]
    assert len(counted) == len(TABLES), again.output
    assert all(line.endswith("(+0)") for line in counted), again.output

    async def ingest_new() -> int:
        async with await open_ledger(settings_factory(db=postgres_url)) as ledger:
            body = prediction_body("p-new", "completed", model=MODEL)
            return (await ledger.ingest(parse(body, webhook_id="w-new"), now=NOW + 300)).event_id

    copied_max = max(row[0] for row in rows(source.db, "events", "id"))
    assert asyncio.run(ingest_new()) > copied_max


def test_an_interrupted_copy_resumes_and_verifies(
    settings_factory: Callable[..., Settings],
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A copy stopped after a few batches leaves committed batches behind; run again, it finishes the rest
    and the counts agree."""
    source = settings_factory(db=str(tmp_path / "source.db"))
    asyncio.run(fill(source, predictions=40))
    monkeypatch.setattr(ledger_copy, "BATCH", 7)
    batches: list[int] = []

    def stop_after_three(_table: str, count: int) -> None:
        batches.append(count)
        if len(batches) == 3:
            raise KeyboardInterrupt

    with (
        pytest.raises(KeyboardInterrupt),
        ledger_copy.sides(source.db, postgres_url) as (src, dst),
    ):
        ledger_copy.copy_ledger(src, dst, progress=stop_after_three)
    partial = len(rows(postgres_url, "predictions", "id"))
    assert 0 < partial < 40
    result = copy(source.db, postgres_url)
    assert result.exit_code == 0, result.output
    assert rows(postgres_url, "events", "id") == rows(source.db, "events", "id")


def test_a_target_holding_other_rows_fails_the_verification(
    settings_factory: Callable[..., Settings], postgres_url: str, tmp_path: Path
) -> None:
    """When the counts differ afterwards (the target had rows of its own), the copy fails and names the table."""
    source = settings_factory(db=str(tmp_path / "source.db"))
    asyncio.run(fill(source, predictions=2))
    with direct(postgres_url) as conn:
        conn.execute("INSERT INTO predictions (id, first_seen_at, updated_at) VALUES ('stranger', 1, 1)")
    result = CliRunner().invoke(main, ["ledger", "copy", source.db, postgres_url])
    assert result.exit_code == 1
    assert "predictions: source 2, target 3" in result.output


def test_a_missing_source_and_an_unreachable_target_are_clear(tmp_path: Path) -> None:
    """A source that is not a ledger and a server that cannot be reached are refused with what was wrong,
    the password masked."""
    missing = CliRunner().invoke(main, ["ledger", "copy", str(tmp_path / "nope.db"), str(tmp_path / "t.db")])
    assert missing.exit_code == 2
    assert "no SQLite ledger at" in missing.output
    source = tmp_path / "s.db"
    from receiver.store.connection import open_database

    open_database(source)
    down = CliRunner().invoke(main, ["ledger", "copy", str(source), "postgresql://u:hunter2@127.0.0.1:1/x"])
    assert down.exit_code == 1
    assert "hunter2" not in down.output
    assert "postgresql://u:***@127.0.0.1:1/x" in down.output
