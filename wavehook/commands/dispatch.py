"""Commands of the dispatcher: ``wavehook worker``, ``wavehook replay`` and ``wavehook runs``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from receiver.errors import ConfigError
from receiver.store.records import RUN_STATES
from receiver.timestamps import utc_text
from wavehook.bootstrap import Bootstrap, pass_bootstrap
from wavehook.checks import catalogued_models, expect_ledger
from wavehook.durations import parse_since

if TYPE_CHECKING:
    from receiver.handlers.registry import Handlers
    from receiver.settings import Settings
    from receiver.store.records import ReplayResult


def _handlers(settings: Settings) -> Handlers:
    from receiver.handlers.registry import load_handlers
    from receiver.media_store import open_media_store

    try:
        open_media_store(settings)  # an object store the S3 client cannot be set up for stops the start here
        return load_handlers(settings, known_models=catalogued_models)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


@click.command()
@click.option(
    "--burst",
    is_flag=True,
    help="Reconcile once (with WAVESPEED_API_KEY), run the runs due now and those that become due meanwhile, "
    "print the counts and exit: 0, or 1 on a real failure (not on a handler's).",
)
@pass_bootstrap
def worker(boot: Bootstrap, burst: bool) -> None:
    """Dispatch handler runs (the Procfile's worker: line); stops gracefully on SIGTERM."""
    import sqlite3

    from receiver.dispatch.worker import run_worker
    from receiver.errors import StorageUnavailable
    from receiver.store.location import describe
    from wavehook.worker_tasks import periodic_tasks

    settings = boot.logging()
    handlers = _handlers(settings)
    try:
        report = asyncio.run(run_worker(settings, handlers, periodic=periodic_tasks(settings), burst_mode=burst))
    except StorageUnavailable as exc:
        raise click.ClickException(f"the ledger is unavailable: {exc.message}") from None
    except sqlite3.Error as exc:
        raise click.ClickException(f"the ledger {describe(settings.db)} cannot be used: {exc}") from None
    if report is None:
        return
    for name, result in report.results.items():
        click.echo(f"{name}: {_describe(result)}")
    counts = report.counts
    click.echo(
        f"claimed {counts.claimed}: {counts.succeeded} succeeded, {counts.retried} to retry, {counts.dead} dead"
        + (f", {counts.unrecorded} not recorded" if counts.unrecorded else "")
    )
    for name, error in report.failures.items():
        click.echo(f"error: {name} failed: {error}", err=True)
    if report.failed:
        sys.exit(1)


def _describe(result: object) -> str:
    """A periodic task's counts (a dataclass) as ``field N, ...``; anything else as it prints."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return ", ".join(f"{field.name} {getattr(result, field.name)}" for field in dataclasses.fields(result))
    return str(result)


@click.command()
@click.argument("run_id", required=False, type=click.IntRange(min=1))
@click.option("--prediction", "prediction_id", help="Replay the finished runs of this prediction.")
@click.option("--dead", is_flag=True, help="Replay every dead run (narrow with --handler, --since).")
@click.option("--handler", help="Only runs of this handler.")
@click.option("--since", help="Only runs that last changed since: 30m, 2h, 7d, an ISO 8601 time, or Unix seconds.")
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; change nothing.")
@pass_bootstrap
def replay(
    boot: Bootstrap,
    run_id: int | None,
    prediction_id: str | None,
    dead: bool,
    handler: str | None,
    since: str | None,
    dry_run: bool,
) -> None:
    """Run handlers again: RUN_ID, --prediction ID or --dead. A running dispatcher picks them up at its next poll."""
    from receiver.store.ledger import open_ledger
    from receiver.store.records import RunSelection

    if sum([run_id is not None, prediction_id is not None, dead]) != 1:
        raise click.UsageError("give exactly one of RUN_ID, --prediction ID or --dead")
    settings = boot.logging()
    expect_ledger(settings, "replay")
    now = time.time()
    selection = RunSelection(
        run_id=run_id,
        prediction_id=prediction_id,
        dead=dead,
        handler=handler,
        since=parse_since(since, now) if since else None,
    )

    async def replaying() -> ReplayResult:
        async with await open_ledger(settings) as ledger:
            return await ledger.replay_runs(selection, now=now, dry_run=dry_run)

    result = asyncio.run(replaying())
    if not result.matched and dead:
        click.echo("nothing to replay: no dead run" + (" matches" if handler or since else ""))
        return
    if not result.matched:
        raise click.ClickException("no handler run matches")
    ids = result.would_replay if dry_run else result.replayed
    verb = "would replay" if dry_run else "replayed"
    click.echo(f"{verb} {len(ids)} run(s){': ' if ids else ''}{', '.join(map(str, ids))}")
    for run in result.left_alone:
        click.echo(f"left alone: run {run['id']} ({run['handler']}) is {run['state']}")
    if run_id is not None and not ids:
        raise click.ClickException(
            f"run {run_id} is {result.matched[0]['state']}: only a dead or succeeded run replays"
        )


@click.command()
@click.option("--state", type=click.Choice(RUN_STATES), help="Only runs in this state.")
@click.option("--handler", help="Only runs of this handler.")
@click.option("--prediction", "prediction_id", help="Only runs of this prediction.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_bootstrap
def runs(
    boot: Bootstrap, state: str | None, handler: str | None, prediction_id: str | None, limit: int, as_json: bool
) -> None:
    """List handler runs, newest first."""
    from receiver.store.ledger import open_ledger

    settings = boot.logging()
    expect_ledger(settings, "runs")

    async def read() -> list[dict[str, Any]]:
        async with await open_ledger(settings) as ledger:
            return await ledger.list_runs(state=state, handler=handler, prediction_id=prediction_id, limit=limit)

    rows = asyncio.run(read())
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    click.echo(
        f"{'ID':>6}  {'STATE':<9}  {'HANDLER':<28}  {'PREDICTION':<24}  {'TRIES':>5}  {'UPDATED (UTC)':<19}  ERROR"
    )
    for row in rows:
        error = (row["last_error"] or "").splitlines()[0][:60] if row["last_error"] else ""
        click.echo(
            f"{row['id']:>6}  {row['state']:<9}  {row['handler'][:28]:<28}  {row['prediction_id'][:24]:<24}  "
            f"{row['attempts']:>5}  {utc_text(row['updated_at']):<19}  {error}"
        )
