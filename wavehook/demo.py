"""``wavehook demo``: the whole loop on this machine, no API key needed.

It starts the sandbox (standing in for the provider) and ``wavehook serve`` (receiver, ledger, dispatcher,
dashboard) as real processes on free loopback ports, over a fresh ledger in a new directory; submits one job
per documented model through the submitter, as a user's code would; prints each job's progress as the
provider and the ledger see it; and ends with a table of outcomes and where each output was saved.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click

from receiver import logs
from receiver.settings import Settings
from sandbox.media import png
from submitter import MODELS, ModelSpec, Submitter, SubmitterError
from wavehook.children import Child, ChildFailed, free_port
from wavehook.progress import DemoJob, Progress, render_table

API_KEY = "sandbox-demo-key"  # the sandbox takes any key: nothing real is ever sent
HEALTH_SECONDS = 30.0
PROMPT = "A paper boat drifts across a rain puddle at dusk, reflections rippling"


def demo_jobs(image: Path, *, with_failure: bool) -> list[DemoJob]:
    """One job per model of the catalog: the prompt, and each required image input given as a local file
    (the submitter uploads it, as it would a user's); the rest is left to the documented defaults."""
    jobs = [DemoJob(model.id, _inputs(model, image)) for model in MODELS.values()]
    if with_failure:
        model = next(m for m in MODELS.values() if m.kind == "text-to-video")
        failing = {**_inputs(model, image), "prompt": f"{PROMPT} [sandbox:fail]"}
        jobs.append(DemoJob(model.id, failing, expected="failed"))
    return jobs


def _inputs(model: ModelSpec, image: Path) -> dict[str, Any]:
    inputs: dict[str, Any] = {"prompt": PROMPT}
    for spec in model.inputs:
        if spec.required and spec.media:
            inputs[spec.name] = [str(image)] if spec.type == "array" else str(image)
    return inputs


def clean_env() -> dict[str, str]:
    """This process's environment without wavehook's and the provider's settings: the demo's processes get
    only the ones it sets (an admin token or handler modules of the user's would change what they do)."""
    return {name: value for name, value in os.environ.items() if not name.startswith(("WAVEHOOK_", "WAVESPEED_"))}


def receiver_env(root: Path, *, secret: str, sandbox_url: str, receiver_url: str) -> dict[str, str]:
    return {
        **clean_env(),
        "WAVESPEED_API_KEY": API_KEY,
        "WAVESPEED_BASE_URL": sandbox_url,
        "WAVESPEED_WEBHOOK_SECRET": secret,
        "WAVEHOOK_PUBLIC_URL": receiver_url,
        "WAVEHOOK_DB": str(root / "wavehook.db"),
        "WAVEHOOK_MEDIA_DIR": str(root / "media"),
        # The sandbox serves its outputs on loopback, which downloads refuse unless told otherwise.
        "WAVEHOOK_DOWNLOAD_ALLOW_LOOPBACK": "true",
        "WAVEHOOK_LOG_FORMAT": "json",
    }


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def submit_all(settings: Settings, jobs: list[DemoJob], progress: Progress) -> None:
    submitter = Submitter(settings)
    try:
        for job in jobs:
            try:
                submission = submitter.submit(job.model, job.inputs)
            except SubmitterError as exc:
                progress.problem(job, str(exc))
                continue
            if submission.prediction_id is None:
                progress.problem(job, submission.error or f"submit outcome {submission.outcome}")
            else:
                progress.submitted(job, submission.prediction_id)
    finally:
        submitter.close()


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Where the ledger, media and logs go (default: a new temporary directory).")  # fmt: skip
@click.option("--keep", is_flag=True, help="Leave everything running afterwards, until Ctrl-C.")
@click.option("--with-failure", is_flag=True, help="Add a sixth job that the sandbox is asked to fail.")
@click.option("--queue-time", default=1.0, show_default=True, type=click.FloatRange(0, 60),
              help="Sandbox seconds from created to processing.")  # fmt: skip
@click.option("--run-time", default=3.0, show_default=True, type=click.FloatRange(0, 600),
              help="Sandbox seconds from processing to the end.")  # fmt: skip
@click.option("--timeout", default=45.0, show_default=True, type=click.FloatRange(1, 3600),
              help="Seconds to wait for every job to end.")  # fmt: skip
def demo(
    directory: Path | None, keep: bool, with_failure: bool, queue_time: float, run_time: float, timeout: float
) -> None:
    """Run the whole loop locally: sandbox provider, receiver, dispatcher, one job per documented model."""
    root = directory or Path(tempfile.mkdtemp(prefix="wavehook-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    if (root / "wavehook.db").exists():
        raise click.UsageError(f"{root} already holds a ledger (wavehook.db): give a new or empty --dir")
    # SIGINT too: a shell that starts the demo in the background leaves SIGINT ignored, and Python then
    # never raises KeyboardInterrupt.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    # The demo's own library logs (the submitter's) go to a file: the terminal is for the progress.
    demo_log = open(root / "demo.log", "a", encoding="utf-8")  # noqa: SIM115 (open for the whole run)
    logs.configure(log_format="json", level="info", stream=demo_log)
    secret = "whsec_" + secrets.token_urlsafe(24)
    sandbox = Child(
        "sandbox",
        ["sandbox", "--queue-time", str(queue_time), "--run-time", str(run_time),
         "--delivery-log", str(root / "sandbox-deliveries.jsonl")],
        port=free_port(),
        # The secret goes by environment, not argument: a command line is visible to every local user.
        env={**clean_env(), "WAVESPEED_WEBHOOK_SECRET": secret, "WAVEHOOK_LOG_FORMAT": "json"},
        log_path=root / "sandbox.log",
    )  # fmt: skip
    receiver_port = free_port()
    env = receiver_env(root, secret=secret, sandbox_url=sandbox.url, receiver_url=f"http://127.0.0.1:{receiver_port}")
    receiver = Child("receiver", ["serve"], port=receiver_port, env=env, log_path=root / "receiver.log")
    code = 1
    try:
        code = _run(root, sandbox, receiver, env, with_failure=with_failure, timeout=timeout, keep=keep)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: stopping the receiver and the sandbox")
        code = 130
    except ChildFailed as exc:
        click.echo(f"error: {exc}", err=True)
    finally:
        # A second Ctrl-C must not leave children behind half-stopped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in (receiver, sandbox):
            child.stop()
        demo_log.close()
    sys.exit(code)


def _run(
    root: Path, sandbox: Child, receiver: Child, env: dict[str, str], *, with_failure: bool, timeout: float, keep: bool
) -> int:
    started = time.monotonic()
    for child in (sandbox, receiver):
        child.start()
    for child in (sandbox, receiver):
        child.wait_healthy(time.monotonic() + HEALTH_SECONDS)
    click.echo("wavehook demo: the whole loop on this machine, the sandbox standing in for the provider")
    click.echo(f"  directory  {root}")
    click.echo(f"  sandbox    {sandbox.url}  (the provider's v3 API, imitated; tasks, media, signed webhooks)")
    click.echo(f"  receiver   {receiver.url}  (webhooks, ledger, dispatcher, dashboard)\n")
    image = root / "inputs" / "still.png"
    image.parent.mkdir(exist_ok=True)
    image.write_bytes(png(256, 144))
    jobs = demo_jobs(image, with_failure=with_failure)
    progress = Progress(jobs, sandbox_url=sandbox.url, receiver_url=receiver.url, api_key=API_KEY, started=started)
    submit_all(Settings.from_env(env), jobs, progress)
    progress.watch(deadline=time.monotonic() + timeout)
    click.echo("")
    click.echo(render_table(jobs))
    ok = all(job.as_expected for job in jobs)
    click.echo(f"\n{'all jobs ended as expected' if ok else 'some jobs did not end as expected'}"
               f" in {time.monotonic() - started:.1f} s; logs and ledger in {root}")  # fmt: skip
    if keep:
        click.echo(f"\nstill running: dashboard {receiver.url}/   sandbox {sandbox.url}/_sandbox/status")
        click.echo("press Ctrl-C to stop")
        while sandbox.alive() and receiver.alive():
            time.sleep(0.5)
        click.echo("a child process exited; stopping")
    return 0 if ok else 1
