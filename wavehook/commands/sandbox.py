"""``wavehook sandbox``: run the local imitation of the provider."""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from receiver.settings import Secret
from sandbox.apifaults import parse_api_rates
from sandbox.config import WEBHOOK_ID_MODES, SandboxConfig
from sandbox.faults import FaultError, parse_rates
from wavehook.bootstrap import Bootstrap, pass_bootstrap

_SECONDS = click.FloatRange(0.0, 86400.0)


def _rates(_ctx: click.Context, param: click.Parameter, value: str) -> dict[str, float]:
    try:
        return parse_api_rates(value) if param.name == "api_fault_rates" else parse_rates(value)
    except FaultError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8100, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option(
    "--secret",
    envvar="WAVESPEED_WEBHOOK_SECRET",
    help="Signing secret (whsec_…). Default: $WAVESPEED_WEBHOOK_SECRET, else a new one, served at "
    "GET /api/v3/webhook/secret.",
)
@click.option("--api-key", help="Accept only this API key. Default: any non-empty bearer token.")
@click.option("--queue-time", default=1.0, show_default=True, type=_SECONDS, help="Seconds created → processing.")
@click.option("--run-time", default=3.0, show_default=True, type=_SECONDS, help="Seconds processing → final.")
@click.option("--jitter", default=0.3, show_default=True, type=click.FloatRange(0.0, 0.99), help="Random ± share.")
@click.option(
    "--webhook-id",
    "webhook_id_mode",
    type=click.Choice(WEBHOOK_ID_MODES),
    default="task",
    show_default=True,
    help="webhook-id header: the task id (as in the provider's docs) or one id per event.",
)
@click.option("--retry-initial", default=1.0, show_default=True, type=_SECONDS, help="First retry after (s).")
@click.option("--retry-max", default=60.0, show_default=True, type=_SECONDS, help="Longest pause between retries.")
@click.option("--retry-window", default=3600.0, show_default=True, type=_SECONDS, help="Give up after (s).")
@click.option("--delivery-timeout", default=10.0, show_default=True, type=_SECONDS, help="Per attempt (s).")
@click.option(
    "--faults",
    "fault_rates",
    default="",
    callback=_rates,
    metavar="NAME=RATE,…",
    help="Run-wide fault rates, e.g. duplicate=0.3,stale_processing=0.1,drop=0.1.",
)
@click.option("--delay", default=5.0, show_default=True, type=_SECONDS, help="Seconds of the `delay` fault.")
@click.option("--seed", type=int, help="Seed of the random choices (durations, faults): a run can be replayed.")
@click.option("--delivery-log", type=click.Path(dir_okay=False, path_type=Path), help="Also append it here.")
@click.option("--validate/--no-validate", default=True, show_default=True, help="Refuse invalid inputs.")
@click.option(
    "--strict-inputs", is_flag=True, help="Refuse inputs a documented model's page does not list (default: accept)."
)
@click.option(
    "--answer-delay", default=0.0, show_default=True, type=_SECONDS, help="Seconds before each API call is answered."
)
@click.option(
    "--api-faults",
    "api_fault_rates",
    default="",
    callback=_rates,
    metavar="NAME=RATE,…",
    help="Per API request, e.g. rate_limit=0.2,server_error=0.1,timeout=0.05,drop_answer=0.05.",
)
@click.option("--retry-after", default=1.0, show_default=True, type=_SECONDS, help="Retry-After of a 429 (s).")
@click.option(
    "--answer-hold", default=120.0, show_default=True, type=_SECONDS, help="How long a timed-out answer is held (s)."
)
@click.option("--request-log", type=click.Path(dir_okay=False, path_type=Path), help="Also append API requests here.")
@click.option(
    "--sync-timeout", default=60.0, show_default=True, type=_SECONDS, help="Sync-mode window before its timeout answer."
)
@click.option(
    "--max-upload-mb", default=100, show_default=True, type=click.IntRange(1, 10240), help="Upload size cap (MiB)."
)
@click.option(
    "--created-at-digits",
    default=3,
    show_default=True,
    type=click.IntRange(0, 9),
    help="Fraction digits of created_at.",
)
@click.option("--balance", default=100.0, show_default=True, type=float, help="USD the balance routes report.")
@pass_bootstrap
def sandbox(
    boot: Bootstrap,
    host: str,
    port: int,
    secret: str | None,
    api_key: str | None,
    queue_time: float,
    run_time: float,
    jitter: float,
    webhook_id_mode: str,
    retry_initial: float,
    retry_max: float,
    retry_window: float,
    delivery_timeout: float,
    fault_rates: dict[str, float],
    delay: float,
    seed: int | None,
    delivery_log: Path | None,
    validate: bool,
    strict_inputs: bool,
    answer_delay: float,
    api_fault_rates: dict[str, float],
    retry_after: float,
    answer_hold: float,
    request_log: Path | None,
    sync_timeout: float,
    max_upload_mb: int,
    created_at_digits: int,
    balance: float,
) -> None:
    """Run the local provider sandbox: the v3 API, real media, signed webhooks, injectable faults."""
    import uvicorn

    from sandbox.app import create_app

    boot.logging()
    config = SandboxConfig(
        secret=Secret(secret.split(",")[0].strip() if secret else "whsec_" + secrets.token_urlsafe(24)),
        api_key=Secret(api_key) if api_key else None,
        queue_seconds=queue_time,
        run_seconds=run_time,
        jitter=jitter,
        webhook_id_mode=webhook_id_mode,
        retry_initial=retry_initial,
        retry_max=retry_max,
        retry_window=retry_window,
        delivery_timeout=delivery_timeout,
        fault_rates=fault_rates,
        delay_seconds=delay,
        seed=seed,
        delivery_log=delivery_log,
        validate_inputs=validate,
        strict_inputs=strict_inputs,
        answer_delay=answer_delay,
        api_fault_rates=api_fault_rates,
        retry_after=retry_after,
        answer_hold=answer_hold,
        request_log=request_log,
        sync_timeout=sync_timeout,
        max_upload_bytes=max_upload_mb * 1024 * 1024,
        created_at_digits=created_at_digits,
        balance=balance,
    )
    click.echo(f"sandbox: provider API at http://{host}:{port}/api/v3 (signing secret: GET /api/v3/webhook/secret)")
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning", access_log=False, server_header=False)
