"""Batches followed to the end, against a real sandbox and receiver: ``batch --wait`` with its second bar and
final table, image paths relative to the batch file, and ``list`` by batch file and job key with the prompt."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.media import png
from tests.support import WAVEHOOK, Process

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
