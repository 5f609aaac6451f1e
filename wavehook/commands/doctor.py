"""``wavehook doctor``: check a deployment end to end and say what to fix."""

from __future__ import annotations

import asyncio
import sys

import click

from wavehook.bootstrap import Bootstrap, pass_bootstrap
from wavehook.checks import catalogued_models


@click.command()
@pass_bootstrap
def doctor(boot: Bootstrap) -> None:
    """Check a deployment end to end (secret, clock, public URL, a signed round trip, ledger, handlers).

    On PostgreSQL it also says whether the server has room for one more process's connections.

    Each check prints OK, WARN or FAIL with what to fix. Exits 0 only when no check failed.
    """
    from wavehook.doctor import diagnose

    settings = boot.logging()
    findings = asyncio.run(diagnose(settings, known_models=catalogued_models()))
    for finding in findings:
        click.echo(finding.line())
    failed = [finding.check for finding in findings if finding.state == "fail"]
    if failed:
        click.echo(f"{len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        sys.exit(1)
    click.echo("every check passed")
