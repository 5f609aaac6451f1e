"""``wavehook``: the console script.

One bootstrap (``wavehook.bootstrap``): the group makes it, every command takes the settings and the logging
set-up from it. Each command is imported only when it runs: ``wavehook --help`` lists them from the table
below (a test keeps each line equal to the command's own help), so neither it nor ``wavehook models`` imports
the web stack.
"""

from __future__ import annotations

import gc
import importlib

import click

from wavehook.bootstrap import Bootstrap
from wavehook.environment import with_environment

# name -> (where the command lives, the start of its help), in the order ``--help`` lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": (
        "wavehook.commands.receiver:serve",
        "Run the webhook receiver (and, by default, the handler dispatcher).",
    ),
    "worker": (
        "wavehook.commands.dispatch:worker",
        "Dispatch handler runs (the Procfile's worker: line); stops gracefully on SIGTERM.",
    ),
    "verify": (
        "wavehook.commands.receiver:verify",
        "Check a delivery's signature; if it fails, say why and which usual mistake explains it.",
    ),
    "doctor": (
        "wavehook.commands.doctor:doctor",
        "Check a deployment end to end (secret, clock, public URL, a signed round trip, ledger, handlers).",
    ),
    "replay": (
        "wavehook.commands.dispatch:replay",
        "Run handlers again: RUN_ID, --prediction ID or --dead.",
    ),
    "runs": ("wavehook.commands.dispatch:runs", "List handler runs, newest first."),
    "models": (
        "wavehook.commands.submitter:models",
        "List the catalogued models, or one MODEL's inputs with their ranges and defaults.",
    ),
    "submit": (
        "wavehook.commands.submitter:submit",
        "Submit one job to MODEL with its webhook attached: -p prompt='a fox' -p duration=5.",
    ),
    "batch": (
        "wavehook.commands.submitter:batch",
        "Submit every job of a JSON Lines file; a re-run sends only what was never sent.",
    ),
    "status": (
        "wavehook.commands.submitter:status",
        "Show one prediction from the ledger (events, handler runs); the provider is asked if it is not there.",
    ),
    "list": (
        "wavehook.commands.submitter:list_predictions",
        "List predictions in the ledger, most recently updated first.",
    ),
    "secret": (
        "wavehook.commands.submitter:secret",
        "Fetch the account's webhook signing secret (export it as WAVESPEED_WEBHOOK_SECRET).",
    ),
    "reconcile": (
        "wavehook.commands.submitter:reconcile",
        "Fetch predictions still open from the provider and ingest them like webhooks; resolve doubtful submits.",
    ),
    "ledger": (
        "wavehook.commands.ledger:ledger",
        "Move a ledger between backends (SQLite, PostgreSQL): ledger copy SOURCE TARGET.",
    ),
    "sandbox": (
        "wavehook.commands.sandbox:sandbox",
        "Run the local provider sandbox: the v3 API, real media, signed webhooks, injectable faults.",
    ),
    "demo": (
        "wavehook.demo:demo",
        "Run the whole loop locally: sandbox provider, receiver, dispatcher, one job per documented model.",
    ),
}


def load_command(name: str) -> click.Command:
    module, _, attribute = COMMANDS[name][0].partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command)
    return with_environment(name, command)


class LazyGroup(click.Group):
    """A group whose commands are imported when one is run (or its own help is asked for)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load_command(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_where, short) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wavehook")
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and errors (over WAVEHOOK_LOG_LEVEL).")
@click.option("-v", "--verbose", is_flag=True, help="Log everything, debug lines too (over WAVEHOOK_LOG_LEVEL).")
@click.pass_context
def main(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """Event-driven WaveSpeedAI jobs: signed webhooks, recorded once, dispatched to handlers."""
    gc.enable()  # the console script paused it while the command line started (wavehook.console)
    if quiet and verbose:
        raise click.UsageError("give --quiet or --verbose, not both")
    ctx.obj = Bootstrap(level="warning" if quiet else "debug" if verbose else None)
