"""The submitter's commands: models, submit, batch, status, list, secret, reconcile.

Exit codes: 0 done; 1 the provider refused or failed (or, with ``--wait``, the prediction failed); 2 invalid
inputs or usage, nothing sent; 3 the submit's outcome is unknown (recorded; ``reconcile`` resolves it);
4 ``--wait`` gave up before a final status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from receiver.errors import ConfigError
from submitter import render
from submitter.batch import read_jobs
from submitter.catalog import get_model, not_catalogued
from submitter.errors import (
    AmbiguousId,
    AmbiguousSubmit,
    BatchError,
    SubmitterError,
    UploadError,
    ValidationError,
    WaitTimeout,
)
from submitter.prepared import prepare
from wavehook.bootstrap import Bootstrap
from wavehook.checks import expect_ledger
from wavehook.durations import parse_duration

if TYPE_CHECKING:
    from receiver.settings import Secret, Settings
    from submitter.service import AsyncSubmitter

T = TypeVar("T")


def _settings(*, logging: bool = True) -> Settings:
    boot = click.get_current_context().ensure_object(Bootstrap)
    return boot.logging() if logging else boot.settings()


def _run(settings: Settings, work: Callable[[AsyncSubmitter], Awaitable[T]]) -> T:
    """Run ``work`` with an open AsyncSubmitter; submitter errors become a message and an exit code."""
    from submitter.service import AsyncSubmitter

    async def main() -> T:
        sub = await AsyncSubmitter.open(settings)
        async with sub:
            return await work(sub)

    try:
        return asyncio.run(main())
    except (ValidationError, BatchError, UploadError, AmbiguousId) as exc:  # a bad local file or URL: invalid input
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except AmbiguousSubmit as exc:
        click.echo(f"unknown outcome: {exc}", err=True)
        sys.exit(3)
    except WaitTimeout as exc:
        click.echo(f"gave up waiting: {exc}", err=True)
        sys.exit(4)
    except SubmitterError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except ConfigError as exc:  # e.g. a handler module that cannot be imported
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def parse_params(model: str, pairs: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` pairs; a key given several times becomes a list. Values of a model outside the catalog
    are read as JSON when they parse as JSON (``5``, ``true``, ``["a"]``), else as text."""
    collected: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="-p")
        collected.setdefault(key.strip(), []).append(value if get_model(model) else _json_or_text(value))
    return {key: values[0] if len(values) == 1 else values for key, values in collected.items()}


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.command()
@click.argument("model", required=False)
@click.option("--json", "as_json", is_flag=True, help="The catalog as JSON.")
def models(model: str | None, as_json: bool) -> None:
    """List the catalogued models, or one MODEL's inputs with their ranges and defaults."""
    import dataclasses

    from submitter.catalog import MODELS

    if model is None:
        if as_json:
            _echo_json([dataclasses.asdict(spec) for spec in MODELS.values()])
        else:
            click.echo(render.models())
        return
    spec = get_model(model)
    if spec is None:
        raise click.ClickException(
            f"{not_catalogued(model)}: it can still be submitted, without local validation "
            f"(catalogued: {', '.join(MODELS)})"
        )
    click.echo(json.dumps(dataclasses.asdict(spec), indent=2) if as_json else render.model(spec))


@click.command()
@click.argument("model")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="An input; repeat a key for a list.")
@click.option("--wait", is_flag=True, help="Wait for the final status (on the ledger, where the webhook lands).")
@click.option("--timeout", default="1h", show_default=True, help="With --wait: give up after this long.")
@click.option("--fallback-after", help="With --wait: ask the provider after this long without a webhook.")
@click.option("--json", "as_json", is_flag=True, help="Print the submission (and the final prediction) as JSON.")
@click.option("--allow-extra", is_flag=True, help="Send inputs the model's page does not list (default: refuse them).")
def submit(
    model: str,
    params: tuple[str, ...],
    wait: bool,
    timeout: str,
    fallback_after: str | None,
    as_json: bool,
    allow_extra: bool,
) -> None:
    """Submit one job to MODEL with its webhook attached: -p prompt='a fox' -p duration=5."""
    inputs = parse_params(model, params)
    deadline = parse_duration(timeout)
    fallback = parse_duration(fallback_after) if fallback_after else None
    settings = _settings()
    try:
        # checked once, before touching anything
        job = prepare(
            model,
            inputs,
            max_upload_bytes=settings.submit.upload_max_bytes,
            from_strings=True,
            allow_extra=allow_extra or settings.submit.allow_extra_inputs,
        )
    except (ValidationError, UploadError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)

    async def work(sub: AsyncSubmitter) -> tuple[Any, dict[str, Any] | None]:
        result = await sub.submit_prepared(job)
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
        if not as_json:
            click.echo(render.submission(result))
        final = None
        if wait and result.prediction_id:
            final = await sub.wait(
                result.prediction_id,
                deadline=deadline,
                fallback_after=fallback,
                on_refusal=lambda text: click.echo(f"warning: {text}", err=True),
            )
        return result, final

    expect_ledger(settings, "submit", may_create=True)
    result, final = _run(settings, work)
    if as_json:
        _echo_json({"submission": result.as_dict(), "prediction": final})
    elif final is not None:
        click.echo(render.prediction(final))
    if final is not None and final.get("status") != "completed":
        sys.exit(1)


@contextlib.contextmanager
def _progress(total: int, enabled: bool, label: str = "submitting") -> Iterator[Callable[[Any, Any], None]]:
    """A bar on stderr; on a terminal, log lines written meanwhile wait until it is done (never inside it)."""
    if not enabled:
        yield lambda _job, _result: None
        return
    boot = click.get_current_context().ensure_object(Bootstrap)
    holding = boot.log_stream.holding() if sys.stderr.isatty() else contextlib.nullcontext()
    with holding, click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True) as bar:
        yield lambda _job, _result: bar.update(1)


def _limits(raw: tuple[str, ...]) -> dict[str, int]:
    limits: dict[str, int] = {}
    for item in raw:
        model, _, number = item.rpartition("=")
        if not model or not number.isdigit() or int(number) < 1:
            raise click.BadParameter(f"{item!r} is not MODEL=N with N ≥ 1", param_hint="--model-limit")
        limits[model] = int(number)
    return limits


@click.command()
@click.argument("jobs_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--concurrency", default=16, show_default=True, type=click.IntRange(1, 256), help="Jobs in flight.")
@click.option("--per-model", type=click.IntRange(1, 256), help="Jobs in flight per model (default: --concurrency).")
@click.option("--model-limit", multiple=True, metavar="MODEL=N", help="Jobs in flight for one model; repeatable.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="A progress bar on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--allow-extra", is_flag=True, help="Send inputs the models' pages do not list (default: refuse them).")
@click.option("--wait", is_flag=True, help="Then follow every job to its final status (a second bar) and list them.")
@click.option("--timeout", default="1h", show_default=True, help="With --wait: give up after this long.")
def batch(
    jobs_file: Path,
    concurrency: int,
    per_model: int | None,
    model_limit: tuple[str, ...],
    progress: bool,
    as_json: bool,
    allow_extra: bool,
    wait: bool,
    timeout: str,
) -> None:
    """Submit every job of a JSON Lines file; a re-run sends only what was never sent.

    Each line: {"model": …, "input": {…}, "key": optional}. Relative image paths are relative to the file's
    directory."""
    from submitter.follow import resolve_paths

    limits = _limits(model_limit)
    deadline = parse_duration(timeout)
    settings = _settings()
    expect_ledger(settings, "batch", may_create=True)
    try:
        jobs = read_jobs(jobs_file.read_text(encoding="utf-8").splitlines())
    except BatchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    jobs = resolve_paths(jobs, jobs_file.resolve().parent)
    sent: list[str] = []
    followed: tuple[dict[str, dict[str, Any]], list[str]] = ({}, [])

    async def work(sub: AsyncSubmitter) -> Any:
        nonlocal followed
        show = progress and not as_json
        with _progress(len(jobs), show) as tick:

            def on_result(job: Any, result: Any) -> None:
                tick(job, result)
                if result.prediction_id:
                    sent.append(result.prediction_id)

            summary = await sub.batch(
                jobs,
                concurrency=concurrency,
                per_model=per_model,
                model_limits=limits,
                on_result=on_result,
                allow_extra=allow_extra or None,
            )
        if wait:
            followed = await _follow(sub, sent, deadline, show)
        return summary

    # Ctrl-C (or ``kill -INT``) ends the batch with what was sent, also when a script started it in the
    # background: the shell then leaves SIGINT ignored, and Python would never raise KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        summary = _run(settings, work)
    except KeyboardInterrupt:
        _interrupted(settings, jobs_file, [job.key for job in jobs])
    final, still_open = followed
    if as_json:
        report = summary.as_dict()
        if wait:
            report |= {"predictions": list(final.values()), "still_open": still_open}
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        click.echo(render.batch(summary))
        if wait:
            click.echo(render.outcomes([final[i] for i in dict.fromkeys(sent) if i in final], still_open))
    if summary.failed or summary.unknown:
        sys.exit(1)
    if still_open:
        sys.exit(4)
    if any(row.get("status") != "completed" for row in final.values()):
        sys.exit(1)


def _interrupted(settings: Settings, jobs_file: Path, keys: list[str]) -> NoReturn:
    """After Ctrl-C: what was sent, what is unknown, and the exact commands that finish the batch; exit 130."""
    from receiver.store.ledger import open_ledger

    async def states() -> dict[str, dict[str, Any]]:
        async with await open_ledger(settings) as ledger:
            return await ledger.submissions_by_job_keys(keys)

    rows = asyncio.run(states())
    sent = sum(1 for row in rows.values() if row["state"] == "submitted")
    unknown = sum(1 for row in rows.values() if row["state"] in ("sending", "unknown"))
    failed = sum(1 for row in rows.values() if row["state"] == "failed")
    not_sent = len(keys) - len(rows)
    click.echo(
        f"\ninterrupted: {sent} of {len(keys)} job(s) sent, {unknown} unknown (sent, no answer recorded), "
        f"{failed} refused, {not_sent} not sent",
        err=True,
    )
    command = f"wavehook batch {shlex.quote(str(jobs_file.resolve()))}"
    click.echo(f"to finish the batch: {command}", err=True)
    if unknown:
        click.echo(
            "  (it looks the unknown ones up before anything is sent again, so no job goes twice; "
            "`wavehook reconcile` resolves them alone, once the provider timeouts have passed: 70 s by default)",
            err=True,
        )
    sys.exit(130)


async def _follow(
    sub: AsyncSubmitter, prediction_ids: list[str], deadline: float, show: bool
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The second bar: predictions reaching their final status, read from the ledger where webhooks land."""
    from submitter.follow import follow

    with _progress(len(set(prediction_ids)), show, label="finishing") as tick:
        return await follow(
            sub.ledger, prediction_ids, deadline=deadline, sleep=sub.sleep, on_final=lambda row: tick(row, None)
        )


@click.command()
@click.argument("prediction_id")
@click.option("--json", "as_json", is_flag=True, help="The ledger's record as JSON.")
def status(prediction_id: str, as_json: bool) -> None:
    """Show one prediction from the ledger (events, handler runs); the provider is asked if it is not there."""

    async def work(sub: AsyncSubmitter) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        row = await sub.status(prediction_id)  # a shortened id, as `runs` and the dashboard show, works too
        return row, (await sub.client.result(prediction_id) if row is None else None)

    settings = _settings()
    expect_ledger(settings, "status")
    row, remote = _run(settings, work)
    if row is None:
        click.echo(f"{prediction_id} is not in the ledger; the provider says:", err=True)
        _echo_json(remote)
        return
    click.echo(json.dumps(row, indent=2, default=str) if as_json else render.prediction(row))


@click.command("list")
@click.option("--status", "status_", help="Only predictions with this status.")
@click.option("--model", help="Only predictions of this model.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help="At most this many.")
@click.option(
    "--batch",
    "batch_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Only the jobs of this batch file.",
)
@click.option("--key", "job_key", help="Only the job with this key (a batch line's key).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_predictions(
    status_: str | None, model: str | None, limit: int, batch_file: Path | None, job_key: str | None, as_json: bool
) -> None:
    """List predictions in the ledger, most recently updated first.

    Each row shows the start of its prompt; --batch and --key narrow it to the jobs of a batch file."""
    from receiver.store.ledger import open_ledger
    from submitter.follow import jobs_predictions

    settings = _settings()
    expect_ledger(settings, "list")
    keys: list[str] | None = None
    if batch_file is not None:
        try:
            keys = [job.key for job in read_jobs(batch_file.read_text(encoding="utf-8").splitlines())]
        except BatchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
    if job_key is not None:
        keys = [job_key] if keys is None else [key for key in keys if key == job_key]

    async def read() -> list[dict[str, Any]]:
        async with await open_ledger(settings) as ledger:
            if keys is None:
                return await ledger.list_predictions(status=status_, model=model, limit=limit)
            rows = await jobs_predictions(ledger, keys)
            return [
                row
                for row in rows
                if (status_ is None or row.get("status") == status_) and (model is None or row.get("model") == model)
            ][:limit]

    rows = asyncio.run(read())
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=str))
    else:
        click.echo(render.predictions(rows))


@click.command()
def secret() -> None:
    """Fetch the account's webhook signing secret (export it as WAVESPEED_WEBHOOK_SECRET)."""
    from submitter.client import AsyncProviderClient

    settings = _settings()

    async def fetch() -> Secret:
        async with AsyncProviderClient.from_settings(settings) as client:
            return await client.webhook_secret()

    try:
        value = asyncio.run(fetch())
    except SubmitterError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(value.reveal())
    click.echo("export it as WAVESPEED_WEBHOOK_SECRET for `wavehook serve`", err=True)


@click.command()
@click.option("--older-than", help="Only predictions open for longer (90, 30s, 10m, 2h; default from settings).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def reconcile(older_than: str | None, as_json: bool) -> None:
    """Fetch predictions still open from the provider and ingest them like webhooks; resolve doubtful submits."""
    seconds = parse_duration(older_than) if older_than else None
    counts = _run(_settings(), lambda sub: sub.reconcile(older_than=seconds))
    click.echo(json.dumps(counts.as_dict()) if as_json else render.reconcile(counts))


COMMANDS = (models, submit, batch, status, list_predictions, secret, reconcile)
