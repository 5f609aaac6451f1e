"""Start-up checks the commands share: the catalog handler globs are checked against, and the ledger a
command is about to open (never a surprise: see ``receiver.store.location``)."""

from __future__ import annotations

import sys

import click

from receiver.settings import Settings


def catalogued_models() -> tuple[str, ...]:
    """The model ids of the submitter's catalog, for the warning about handler globs that match none."""
    from submitter.catalog import MODELS

    return tuple(MODELS)


def expect_ledger(settings: Settings, command: str, *, may_create: bool = False) -> None:
    """Stop (exit 2), or warn when the command ``may_create`` one, if the ledger it would open does not exist."""
    from receiver.store.location import is_new, missing_message

    if not is_new(settings.db):
        return
    message = missing_message(settings.db, command)
    if may_create:
        click.echo(
            f"warning: {message}; a receiver on another ledger refuses this job's webhook (token_mismatch)", err=True
        )
        return
    click.echo(f"error: {message}", err=True)
    sys.exit(2)
