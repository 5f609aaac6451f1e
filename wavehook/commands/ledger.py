"""``wavehook ledger copy``: move a ledger between backends (SQLite to PostgreSQL, and back)."""

from __future__ import annotations

import sys

import click

from receiver.errors import ConfigError, StorageUnavailable
from wavehook.bootstrap import Bootstrap, pass_bootstrap


@click.group()
def ledger() -> None:
    """Move a ledger between backends (SQLite, PostgreSQL): ledger copy SOURCE TARGET."""


@ledger.command()
@click.argument("source")
@click.argument("target")
@pass_bootstrap
def copy(boot: Bootstrap, source: str, target: str) -> None:
    """Copy every prediction, event, run, download, submission and secret of the ledger SOURCE into TARGET.

    Each is a SQLite file path or a postgresql:// URL; TARGET is created (or upgraded) first. Rows keep their
    ids, and the correlation secret comes along, so jobs in flight keep their tokens. Idempotent (rows already
    there are left as they are) and resumable (run it again after an interruption); the row counts of every
    table are compared at the end. Stop the instances writing to SOURCE first.
    """
    from receiver.store.copy import TABLES, CountMismatch, copy_ledger, sides
    from receiver.store.location import describe

    settings = boot.logging()
    try:
        with sides(source, target, timeout_ms=settings.busy_timeout_ms) as (src, dst):
            total = sum(src.count(table) for table, _key in TABLES)
            click.echo(f"copying {total:,} rows from {describe(source)} to {describe(target)}", err=True)
            with click.progressbar(length=total, label="copying", file=sys.stderr) as bar:
                report = copy_ledger(src, dst, progress=lambda _table, rows: bar.update(rows))
    except CountMismatch as exc:
        raise click.ClickException(str(exc)) from None
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except StorageUnavailable as exc:
        raise click.ClickException(exc.message) from None
    for item in report:
        click.echo(f"{item.table:<13} source {item.source:>9,}  target {item.target_after:>9,}  (+{item.copied:,})")
    click.echo("verified: every table holds as many rows on the target as on the source")
