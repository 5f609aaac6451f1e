"""Batches followed to the end, against a real sandbox and receiver: ``batch --wait`` with its second bar and
final table, image paths relative to the batch file, and ``list`` by batch file and job key with the prompt."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.media import png
from tests.support import WAVEHOOK, Process, wait_for

pytestmark = pytest.mark.integration

T2V = "bytedance/seedance-v1-lite-t2v-480p"
I2V = "bytedance/waver-1.0"


def test_batch_wait_follows_every_job_and_list_finds_them(
    sandbox_factory: Callable[..., Process], serve_factory: Callable[..., Process], tmp_path: Path
) -> None:
    """Run from another directory: the relative image resolves against the file; --wait ends with each job's
    status and kept copy (or error), exits 1 for the failed one; list --batch and --key find the jobs again."""
    sandbox = sandbox_factory()
    receiver = serve_factory(env={"WAVEHOOK_DOWNLOAD_ALLOW_LOOPBACK": "true"})
    jobs_dir = tmp_path / "campaign"
    (jobs_dir / "stills").mkdir(parents=True)
    (jobs_dir / "stills" / "cat.png").write_bytes(png())
    lines = [
        {"model": T2V, "input": {"prompt": "a red fox running through fresh snow at dawn, cinematic"}, "key": "fox"},
        {"model": T2V, "input": {"prompt": "waves on black sand"}, "key": "waves"},
        {"model": T2V, "input": {"prompt": "a broken job [sandbox:fail]"}, "key": "broken"},
        {"model": I2V, "input": {"prompt": "the cat blinks", "image": "stills/cat.png"}, "key": "cat"},
    ]
    jobs = jobs_dir / "jobs.jsonl"
    jobs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **receiver.env,
        "WAVESPEED_API_KEY": "any",
        "WAVESPEED_BASE_URL": sandbox.url,  # type: ignore[attr-defined]
        "WAVEHOOK_PUBLIC_URL": receiver.url,  # type: ignore[attr-defined]
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [WAVEHOOK, *args], env=env, cwd=elsewhere, capture_output=True, text=True, timeout=90, check=False
        )

    done = run("batch", str(jobs), "--wait", "--timeout", "60s")
    assert done.returncode == 1, done.stdout + done.stderr  # one job failed, as asked
    assert "4 job(s): 4 submitted" in done.stdout
    assert "3 completed, 1 failed" in done.stdout
    table = done.stdout.split("3 completed, 1 failed", 1)[1]
    assert table.count("media/") == 3  # each completed job's kept copy
    assert "failed" in table
    as_json = json.loads(run("batch", str(jobs), "--wait", "--json").stdout)  # a re-run sends nothing
    assert as_json["skipped"] == 4
    statuses = sorted(row["status"] for row in as_json["predictions"])
    assert statuses == ["completed", "completed", "completed", "failed"]
    assert as_json["still_open"] == []

    listed = run("list", "--batch", str(jobs))
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.strip().splitlines()) == 2 + 4  # header, rule, four jobs
    assert "a red fox running through fresh snow at…" in listed.stdout
    one = run("list", "--key", "cat", "--json")
    (row,) = [json.loads(line) for line in one.stdout.splitlines()]
    assert (row["model"], row["job_key"], row["status"]) == (I2V, "cat", "completed")
    assert row["input"]["image"].startswith("http")  # the file was found from the batch's directory and uploaded


def test_ctrl_c_says_what_was_sent_and_reconcile_counts_the_unknown(
    sandbox_factory: Callable[..., Process], serve_factory: Callable[..., Process], tmp_path: Path
) -> None:
    """SIGINT in the middle of a batch: it prints what was sent, what is unknown (in flight) and the exact
    command that finishes it, exits 130; a reconcile right after counts those unknown ones as still unknown.
    This holds for a batch a script started in the background too, which inherits SIGINT ignored."""
    sandbox = sandbox_factory(answer_delay=1.5)  # every submit is in flight for 1.5 s
    receiver = serve_factory(env={"WAVEHOOK_DOWNLOAD": "false"})
    jobs = tmp_path / "jobs.jsonl"
    # Ten waves of four (15 s): the interrupt lands mid-batch even on a machine slow enough to take seconds
    # between seeing the second wave in flight and sending it (with three waves, the batch once ended first).
    total = 40
    jobs.write_text("".join(json.dumps({"model": T2V, "input": {"prompt": f"fox {n}"}}) + "\n" for n in range(total)))
    env = {
        **receiver.env,
        "WAVESPEED_API_KEY": "any",
        "WAVESPEED_BASE_URL": sandbox.url,  # type: ignore[attr-defined]
        "WAVEHOOK_PUBLIC_URL": receiver.url,  # type: ignore[attr-defined]
    }
    proc = subprocess.Popen(
        # Started as a script starts a job in the background, with SIGINT ignored: the batch still hears it.
        ["sh", "-c", 'trap "" INT; exec "$0" "$@"', WAVEHOOK, "batch", str(jobs), "--concurrency", "4"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = receiver.db  # type: ignore[attr-defined]

    def submitted() -> int:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT count(*) FROM submissions WHERE state = 'submitted'").fetchone()[0])

    wait_for(lambda: submitted() >= 4, timeout=30, what="the first four jobs answered")
    wait_for(lambda: _in_flight(db) >= 1, timeout=10, what="the next jobs in flight")
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    found = re.search(
        rf"interrupted: (\d+) of {total} job\(s\) sent, (\d+) unknown .*, (\d+) refused, (\d+) not sent", err
    )
    assert found, err
    sent, unknown, refused, not_sent = (int(n) for n in found.groups())
    assert sent >= 4
    assert unknown >= 1
    assert sent + unknown + refused + not_sent == total
    assert f"to finish the batch: wavehook batch {jobs}" in err
    reconciled = subprocess.run(
        [WAVEHOOK, "reconcile", "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    counts = json.loads(reconciled.stdout)
    assert (counts["still_unknown"], counts["too_recent"]) == (unknown, unknown)


def _in_flight(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM submissions WHERE state = 'sending'").fetchone()[0])
