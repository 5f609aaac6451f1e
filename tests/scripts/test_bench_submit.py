"""scripts/bench_submit.py: a tiny run drives the real submitter against a real sandbox and reports it."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

DELAY = 0.05
WARM_UP = 32


@pytest.mark.integration
def test_a_tiny_run_submits_every_job_through_the_ledger_and_reports_each_level(tmp_path: Path) -> None:
    """At concurrency 1 and 4, every job goes through the submitter into the ledger; each timed submit takes at
    least the sandbox's answer delay, no level beats concurrency / delay, and the Markdown has a row each."""
    figures = tmp_path / "figures.json"
    args = ["--answer-delay", str(DELAY), "--concurrency", "1,4", "--jobs-per-slot", "3", "--min-jobs", "5"]
    args += ["--workdir", str(tmp_path), "--json", str(figures)]
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_submit.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    levels = json.loads(figures.read_text())["levels"]
    assert [(lv["mode"], lv["concurrency"], lv["jobs"]) for lv in levels] == [
        ("submit", 1, 5),
        ("batch", 1, 5),
        ("submit", 4, 12),
        ("batch", 4, 12),
    ]
    for level in levels:
        assert 0 < level["rate"] <= level["concurrency"] / DELAY, level
        assert level["cpu_seconds"] > 0
    timed = [seconds for level in levels if level["mode"] == "submit" for seconds in level["latencies"]]
    assert len(timed) == 17
    assert min(timed) >= DELAY

    (ledger,) = tmp_path.glob("run-*/ledger.db")
    conn = sqlite3.connect(ledger)
    try:
        states = conn.execute("SELECT state, count(*) FROM submissions GROUP BY state").fetchall()
    finally:
        conn.close()
    assert states == [("submitted", WARM_UP + 5 + 5 + 12 + 12)]

    report = done.stdout
    assert report.startswith("### Submitting: scripts/bench_submit.py")
    rows = [line for line in report.splitlines() if line.startswith(("| submit |", "| batch |"))]
    assert len(rows) == 4
    assert "The submitter's own time per job at concurrency 1" in report
