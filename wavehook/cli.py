"""``wavehook``: the console script. Each package contributes its commands; this module only gathers them."""

from __future__ import annotations

import click

from receiver.commands import KNOWN_MODELS, serve, verify
from receiver.dispatch_commands import make_worker, replay, runs
from sandbox.commands import sandbox
from submitter.commands import batch, list_predictions, models, reconcile, secret, status, submit
from wavehook.demo import demo
from wavehook.worker_tasks import periodic_tasks


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wavehook")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Event-driven WaveSpeedAI jobs: signed webhooks, recorded once, dispatched to handlers."""
    ctx.meta[KNOWN_MODELS] = _catalogued


def _catalogued() -> tuple[str, ...]:
    from submitter.catalog import MODELS

    return tuple(MODELS)


main.add_command(serve)
main.add_command(verify)
main.add_command(sandbox)
main.add_command(make_worker(periodic_tasks))
main.add_command(replay)
main.add_command(runs)
main.add_command(demo)
main.add_command(models)
main.add_command(submit)
main.add_command(batch)
main.add_command(status)
main.add_command(list_predictions)
main.add_command(secret)
main.add_command(reconcile)
