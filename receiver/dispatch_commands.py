"""Commands of the dispatcher: ``wavehook worker``, ``wavehook replay`` and ``wavehook runs``."""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import time
from typing import TYPE_CHECKING, Any

import click

from receiver.commands import expect_ledger, known_models, load_settings
from receiver.dispatch.worker import PeriodicFactory, run_worker
from receiver.errors import ConfigError
from receiver.handlers.registry import Handlers, load_handlers
from receiver.settings import Settings
from receiver.store.records import RUN_STATES

if TYPE_CHECKING:
    from receiver.store.records import ReplayResult

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _configured() -> Settings:
    """Settings, with logging set up: log lines go to stderr, never into a listing on stdout."""
    from receiver import logs

    settings = load_settings()
    logs.configure(log_format=settings.log_format, level=settings.log_level)
    return settings


def _handlers(settings: Settings) -> Handlers:
    try:
        return load_handlers(settings, known_models=known_models())
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def make_worker(periodic: PeriodicFactory | None = None) -> click.Command:
    """The ``worker`` command, running the periodic tasks ``periodic(settings)`` returns beside dispatch."""

    @click.command("worker")
    @click.option(
        "--burst", is_flag=True, help="Run the runs due now (and those that become due meanwhile), then exit."
    )
    def worker(burst: bool) -> None:
        """Dispatch handler runs (the Procfile's worker: line); stops gracefully on SIGTERM."""
        from receiver import logs

        settings = load_settings()
        logs.configure(log_format=settings.log_format, level=settings.log_level)
        handlers = _handlers(settings)
        tasks = periodic(settings) if periodic is not None and not burst else ()
        counts = asyncio.run(run_worker(settings, handlers, periodic=tasks, burst_mode=burst))
        if counts is not None:
            click.echo(
                f"claimed {counts.claimed}: {counts.succeeded} succeeded, {counts.retried} to retry, {counts.dead} dead"
            )

    return worker


worker = make_worker()


def parse_since(raw: str, now: float) -> float:
    """``30m``/``2h``/``7d`` ago, an ISO 8601 time (UTC unless it says otherwise), or Unix seconds."""
    match = _DURATION.match(raw.strip())
    if match:
        return now - float(match.group(1)) * _UNIT[match.group(2)]
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{raw!r} is not a duration (30m, 2h, 7d), an ISO 8601 time or Unix seconds", param_hint="--since"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


@click.command()
@click.argument("run_id", required=False, type=click.IntRange(min=1))
@click.option("--prediction", "prediction_id", help="Replay the finished runs of this prediction.")
@click.option("--dead", is_flag=True, help="Replay every dead run (narrow with --handler, --since).")
@click.option("--handler", help="Only runs of this handler.")
@click.option("--since", help="Only runs that last changed since: 30m, 2h, 7d, an ISO 8601 time, or Unix seconds.")
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; change nothing.")
def replay(
    run_id: int | None, prediction_id: str | None, dead: bool, handler: str | None, since: str | None, dry_run: bool
) -> None:
    """Run handlers again: RUN_ID, --prediction ID or --dead. A running dispatcher picks them up at its next poll."""
    from receiver.store.ledger import open_ledger
    from receiver.store.records import RunSelection

    if sum([run_id is not None, prediction_id is not None, dead]) != 1:
        raise click.UsageError("give exactly one of RUN_ID, --prediction ID or --dead")
    settings = _configured()
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


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.command()
@click.option("--state", type=click.Choice(RUN_STATES), help="Only runs in this state.")
@click.option("--handler", help="Only runs of this handler.")
@click.option("--prediction", "prediction_id", help="Only runs of this prediction.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def runs(state: str | None, handler: str | None, prediction_id: str | None, limit: int, as_json: bool) -> None:
    """List handler runs, newest first."""
    from receiver.store.ledger import open_ledger

    settings = _configured()
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
            f"{row['attempts']:>5}  {_when(row['updated_at']):<19}  {error}"
        )
