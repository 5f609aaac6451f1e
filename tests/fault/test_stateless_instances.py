"""Stateless instances, scale to zero: two web instances (dispatch off) behind which the sandbox delivers the
jobs the submitter sent; both are killed -9 mid-run and replaced by fresh ones in new empty directories;
handlers run only from ``wavehook worker --burst`` invocations. Every process starts in a read-only working
directory (a read-only mount: root cannot write there either) with a new, empty TMPDIR; outputs go to a real
S3 server on loopback. On both ledger backends: with SQLite, the only writable place any process is given is
the ledger's directory; with PostgreSQL, none (the handlers of the test record their executions in a
directory of the test's, which is instrumentation, not something wavehook needs)."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.settings import Secret, Settings, SubmitSettings
from submitter import Submitter
from tests.conftest import SECRET
from tests.fault.storage import read_only_dir
from tests.integration.dispatch_support import HANDLERS_MODULE, effects, query
from tests.integration.submitter_support import API_KEY
from tests.s3_server import Bucket
from tests.support import ROOT, WAVEHOOK, Process, free_port, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.fault]

JOBS = 24
MODEL = "bytedance/seedance-v1-lite-t2v-480p"


class Instances:
    """Web instances that each start in a new read-only working directory (HOME too) and a new, empty TMPDIR."""

    def __init__(self, root: Path, env: dict[str, str], mounts: contextlib.ExitStack) -> None:
        self.root = root
        self.env = env
        self.mounts = mounts
        self.started: list[tuple[Process, Any, Path]] = []

    def start(self, port: int) -> Process:
        home = self.root / f"instance-{len(self.started)}"
        self.mounts.enter_context(read_only_dir(home / "cwd"))
        (home / "tmp").mkdir()
        env = {**self.env, "TMPDIR": str(home / "tmp"), "HOME": str(home / "cwd")}
        process = Process(
            [WAVEHOOK, "serve", "--port", str(port)], env=env, log_path=home / "serve.log", cwd=home / "cwd"
        )
        context = running(process, f"http://127.0.0.1:{port}/healthz")
        context.__enter__()
        self.started.append((process, context, home))
        return process

    def stop_all(self) -> None:
        for _process, context, _home in reversed(self.started):
            context.__exit__(None, None, None)

    def written(self) -> dict[str, list[str]]:
        """What each instance left in its working directory and TMPDIR (its log is kept beside them)."""
        return {
            str(home.name): sorted(str(path.relative_to(home)) for path in home.rglob("*") if path.is_file())
            for _process, _context, home in self.started
            if any(path.is_file() for sub in ("cwd", "tmp") for path in (home / sub).rglob("*"))
        }


# Files a person may be editing while the suite runs; what a process could leave (a ledger, a media
# directory, bytecode, a temporary file) has none of these suffixes.
SOURCES = {".py", ".md", ".toml", ".txt", ".html", ".css", ".js", ".sh", ".json"}


def files_under(root: Path) -> set[Path]:
    """Every file under ``root`` except the repository's own metadata, virtualenv and screenshots."""
    skip = {root / ".git", root / ".venv", root / "tests" / "artifacts"}
    return {
        path for path in root.rglob("*") if path.is_file() and not any(path.is_relative_to(prefix) for prefix in skip)
    }


def deliveries(sandbox: Process) -> list[dict[str, Any]]:
    response = httpx.get(f"{sandbox.url}/_sandbox/deliveries", timeout=10)  # type: ignore[attr-defined]
    records: list[dict[str, Any]] = response.json()["deliveries"]
    return records


def burst(env: dict[str, str], root: Path) -> subprocess.CompletedProcess[str]:
    """One ``worker --burst``, as a scheduler starts it: a read-only working directory, a new empty TMPDIR."""
    runs = len(list(root.glob("burst-*")))
    tmp = root / f"burst-{runs}" / "tmp"
    tmp.mkdir(parents=True)
    with read_only_dir(root / f"burst-{runs}" / "cwd") as cwd:
        done = subprocess.run(
            [WAVEHOOK, "worker", "--burst"],
            env={**env, "TMPDIR": str(tmp), "HOME": str(cwd)},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    return done


def test_replaced_instances_and_burst_workers_lose_and_repeat_nothing(
    request: pytest.FixtureRequest,
    backend: str,
    tmp_path: Path,
    sandbox_factory: Callable[..., Process],
    settings_factory: Callable[..., Settings],
    bucket: Bucket,
) -> None:
    """Afterwards every completed prediction's output is in the bucket once with the recorded sha256, every
    handler ran exactly once per prediction, no instance wrote into its working directory or TMPDIR, and the
    repository the processes ran from is unchanged."""
    before = files_under(ROOT)
    sandbox = sandbox_factory(run_time=0.4, queue_time=0.05)
    if backend == "sqlite":  # the ledger's directory is then the one writable place any process is given
        (tmp_path / "ledger").mkdir()
        db = str(tmp_path / "ledger" / "wavehook.db")
    else:  # a PostgreSQL ledger: no process is given a writable directory at all, save an empty TMPDIR
        db = str(request.getfixturevalue("postgres_url"))
    effects_dir = tmp_path / "effects"
    effects_dir.mkdir()
    env = {
        "WAVESPEED_WEBHOOK_SECRET": SECRET,
        "WAVEHOOK_DB": db,
        "WAVEHOOK_LOG_FORMAT": "json",
        "WAVEHOOK_DISPATCH_IN_WEB": "false",
        "WAVEHOOK_HANDLERS": HANDLERS_MODULE,
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",  # the test's handler module lives in the repository: no bytecode there
        "DISPATCH_TEST_DIR": str(effects_dir),
        "WAVEHOOK_DOWNLOAD_ALLOW_LOOPBACK": "true",
        **bucket.env(),
    }
    worker_env = {
        **env,
        "WAVESPEED_API_KEY": API_KEY,
        "WAVESPEED_BASE_URL": sandbox.url,  # type: ignore[attr-defined]
        "WAVEHOOK_RECONCILE_AFTER_SECONDS": "5",
    }
    mounts = contextlib.ExitStack()
    instances = Instances(tmp_path / "instances", env, mounts)
    ports = [free_port(), free_port()]
    submitted: list[str] = []

    def submit_wave(wave: int) -> None:
        """JOBS // 4 jobs to each instance's address, through the submitter as a user's code would."""
        for index, port in enumerate(ports):
            settings = settings_factory(
                db=db,
                api_key=Secret(API_KEY),
                base_url=sandbox.url,  # type: ignore[attr-defined]
                public_url=f"http://127.0.0.1:{port}",
                submit=SubmitSettings(backoff_seconds=0.01),
            )
            with Submitter(settings) as submitter:
                submitted.extend(
                    str(submitter.submit(MODEL, {"prompt": f"job {wave}-{index}-{n}"}).prediction_id)
                    for n in range(JOBS // 4)
                )

    def completed() -> list[dict[str, Any]]:
        return query(db, "SELECT id FROM predictions WHERE status = 'completed'")

    try:
        for port in ports:
            instances.start(port)
        submit_wave(1)
        wait_for(lambda: len(completed()) >= JOBS // 4, timeout=60, what="the first wave's deliveries")
        burst(worker_env, tmp_path / "workers")  # mid-run: the handlers of what has arrived so far
        for process, _context, _home in instances.started:
            process.kill9()
        submit_wave(2)  # its webhooks find no instance
        wait_for(
            lambda: sum(record["outcome"] == "error" for record in deliveries(sandbox)) >= 2,
            timeout=30,
            what="deliveries to find their instances gone",
        )
        for port in ports:  # fresh instances in new empty directories, on the addresses the provider calls
            instances.start(port)
        burst(worker_env, tmp_path / "workers")
        wait_for(lambda: len(completed()) == JOBS, timeout=90, what=f"all {JOBS} predictions completed")
        last = burst(worker_env, tmp_path / "workers")
        assert last.stdout.splitlines()[-1].startswith("claimed ")
    finally:
        instances.stop_all()
        mounts.close()

    outcomes = collections.defaultdict(list)
    for record in deliveries(sandbox):
        outcomes[record["task_id"]].append(record["outcome"])
    refused_then_taken = [task for task, seen in outcomes.items() if "error" in seen and seen[-1] == "accepted"]
    assert len(refused_then_taken) >= 2, "no delivery met a killed instance and then its replacement"
    predictions = {row["id"] for row in completed()}
    assert predictions == set(submitted)
    downloads = query(db, "SELECT prediction_id, path, size, sha256 FROM downloads")
    assert sorted(row["prediction_id"] for row in downloads) == sorted(submitted)  # one output each, once
    objects = bucket.objects()
    assert len(objects) == JOBS
    for row in downloads:
        key = row["path"].removeprefix(f"s3://{bucket.name}/")
        content = bucket.read(key).content
        assert (len(content), hashlib.sha256(content).hexdigest()) == (row["size"], row["sha256"])
    runs = query(db, "SELECT prediction_id, handler, state FROM handler_runs")
    assert collections.Counter(row["state"] for row in runs) == {"succeeded": len(runs)}
    assert {row["handler"] for row in runs} == {"download_outputs", "log", "effect_async", "effect_sync"}
    ran = collections.Counter((handler, prediction) for handler, prediction, _status, _pid in effects(effects_dir))
    assert ran == {(handler, p): 1 for p in submitted for handler in ("effect_async", "effect_sync")}
    assert instances.written() == {}
    assert [path for path in (tmp_path / "workers").rglob("*") if path.is_file()] == []  # their TMPDIRs too
    assert [path for path in files_under(ROOT) - before if path.suffix not in SOURCES] == []
