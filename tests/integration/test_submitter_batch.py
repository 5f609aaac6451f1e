"""``wavehook batch``: 200 jobs at concurrency 16 through a real sandbox and receiver, all completed; running
the same file again submits nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.submitter_support import Loop
from tests.support import wait_for

pytestmark = pytest.mark.integration
JOBS = 200
T2V = "bytedance/seedance-v1-lite-t2v-480p"
PRO = "bytedance/dreamina-v3.0-pro/text-to-video"


def test_batch_of_200_completes_and_a_rerun_sends_nothing(loop: Loop, tmp_path: Path) -> None:
    """Every job submitted once and completed by its webhook; the summary counts them; a second run skips all."""
    jobs = tmp_path / "jobs.jsonl"
    lines = [
        json.dumps({"model": T2V if n % 2 else PRO, "input": {"prompt": f"scene {n}"}}) for n in range(JOBS - 1)
    ] + [json.dumps({"model": PRO, "input": {"prompt": "scene 0"}})]  # the same job twice is two jobs
    jobs.write_text("\n".join(lines) + "\n")
    first = loop.cli("batch", str(jobs), "--concurrency", "16", "--model-limit", f"{PRO}=4", "--json", timeout=120)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {
        "total": JOBS, "submitted": JOBS, "resolved": 0, "skipped": 0, "unknown": 0, "failed": 0, "problems": [],
        "retried": {}, "ambiguous": {}, "resent": 0,
    }  # fmt: skip
    assert loop.sandbox_status()["tasks"] == JOBS
    final = loop.wait_final(JOBS, timeout=60)
    assert {row["status"] for row in final} == {"completed"}
    assert all(row["reference"] and row["submitted_at"] for row in final)
    wait_for(loop.settled, what="the sandbox to settle")

    again = loop.cli("batch", str(jobs), "--concurrency", "16")
    assert again.returncode == 0, again.stderr
    assert "submitting" in again.stderr  # the progress bar
    assert again.stdout.startswith(
        f"{JOBS} job(s): 0 submitted, 0 found by lookup, {JOBS} already sent, 0 unknown, 0 failed"
    )
    assert loop.sandbox_status()["tasks"] == JOBS
    assert len(loop.rows("SELECT reference FROM submissions")) == JOBS
