"""The receiver's commands: ``wavehook serve`` and ``wavehook verify``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from receiver.errors import ConfigError
from wavehook.bootstrap import Bootstrap, pass_bootstrap
from wavehook.checks import catalogued_models

if TYPE_CHECKING:
    from receiver.store.ledger import Ledger


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """The garbage collector off for the block (unless it was off already)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def _close(opening: Awaitable[Ledger]) -> None:
    await (await opening).close()


@click.command()
@click.option("--host", help="Interface to listen on  [default: $WAVEHOOK_HOST, else 127.0.0.1; 0.0.0.0 for all].")
@click.option("--port", type=click.IntRange(0, 65535), help="TCP port  [default: $PORT, else 8000].")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="uvicorn's access log.")
@pass_bootstrap
def serve(boot: Bootstrap, host: str | None, port: int | None, workers: int, access_log: bool) -> None:
    """Run the webhook receiver (and, by default, the handler dispatcher)."""
    # Start-up makes tens of thousands of objects that live as long as the process (modules, classes, the app):
    # the collector would walk them again and again while they are made, to find next to no garbage (~10 ms of a
    # cold start). It waits until they are built; ``serving_app`` then freezes them out of its sight.
    with _collection_paused():
        import structlog
        import uvicorn

        from receiver.handlers.registry import load_handlers
        from receiver.http import auth
        from receiver.http.metrics import prepare_multiprocess, remove_multiprocess
        from receiver.http.server import uvicorn_options
        from receiver.media_store import open_media_store
        from receiver.signature import Verifier
        from receiver.store.ledger import ledger_for, open_ledger

        settings = boot.logging()  # before the checks: a warning about handlers is a log line like every other
        host = host or settings.host
        port = settings.port if port is None else port
        if refusal := auth.startup_refusal(settings.admin_token, host, settings.allow_no_admin_token):
            click.echo(f"error: {refusal}", err=True)
            sys.exit(2)
        try:
            Verifier(settings.require_secrets())  # refuses a missing or empty secret before any worker starts
            # An unimportable module, a duplicate name, a bad status or signature stops the start here.
            handlers = load_handlers(settings, known_models=catalogued_models)
            open_media_store(settings)  # so does an object store the S3 client cannot be set up for
            if workers > 1:
                # The ledger is created or upgraded once, here, before any worker process opens it.
                asyncio.run(_close(open_ledger(settings)))
            else:
                ledger_for(settings)  # a backend that exists; the app's own start opens (and upgrades) it
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        if warning := auth.startup_warning(settings.admin_token, host):
            # Through the log, not click.echo: off a terminal every line the process writes is JSON.
            structlog.get_logger().warning("dashboard_loopback_only", detail=warning.removeprefix("warning: "))
        options = uvicorn_options(settings, workers=workers, access_log=access_log)
        metrics_dir = prepare_multiprocess(workers, os.environ)  # before the workers start: they inherit it
        # One process serves the app built here from what was just checked (a cold start pays for it once); worker
        # processes each build their own from the environment.
        app: Any = "receiver.http.app:create_app_from_env"
        if workers == 1:
            from receiver.http.app import serving_app

            app = serving_app(settings, handlers)
    try:
        uvicorn.run(app, factory=workers > 1, host=host, port=port, **options)
    finally:
        remove_multiprocess(metrics_dir)


@click.command()
@click.argument("body_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--id", "webhook_id", required=True, help="The webhook-id header as received.")
@click.option("--timestamp", required=True, help="The webhook-timestamp header as received.")
@click.option("--signature", required=True, help="The webhook-signature header as received.")
@click.option(
    "--secret",
    envvar="WAVESPEED_WEBHOOK_SECRET",
    required=True,
    help="Signing secret(s), comma-separated (default: $WAVESPEED_WEBHOOK_SECRET).",
)
@click.option("--tolerance", default=300, show_default=True, help="Accepted clock skew in seconds.")
@click.option(
    "--now",
    type=int,
    default=None,
    help="Check the timestamp against this Unix time instead of the clock (to check an old, saved delivery).",
)
def verify(
    body_file: Path, webhook_id: str, timestamp: str, signature: str, secret: str, tolerance: int, now: int | None
) -> None:
    """Check a delivery's signature; if it fails, say why and which usual mistake explains it.

    BODY_FILE holds the request body exactly as received. Exits 0 when valid, 1 when not.
    """
    from receiver.doctor import diagnose

    secrets = [s.strip() for s in secret.split(",") if s.strip()]
    try:
        result = diagnose(
            secrets,
            webhook_id,
            timestamp,
            signature,
            body_file.read_bytes(),
            tolerance_seconds=tolerance,
            clock=None if now is None else (lambda: float(now)),
        )
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--secret") from None
    if result.valid:
        click.echo("valid: the signature matches the body under the given secret")
        return
    click.echo(f"invalid ({result.reason}): {result.message}")
    for hint in result.hints:
        click.echo(f"  - {hint}")
    sys.exit(1)
