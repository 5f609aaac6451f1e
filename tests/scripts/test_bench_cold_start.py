"""scripts/bench_cold_start.py: a tiny run starts real processes and reports a cold start for each shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT


@pytest.mark.integration
def test_a_tiny_run_reports_every_shape(tmp_path: Path, postgres_url: str) -> None:
    """One run of serve and of the Lambda handler, on SQLite and on the test suite's PostgreSQL, each a fresh
    process that accepted a signed delivery: a positive time, under the minute the script allows, for each."""
    figures = tmp_path / "cold.json"
    args = ["--runs", "1", "--json", str(figures), "--postgres", postgres_url]
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_cold_start.py"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(figures.read_text())
    assert "load average at the end" in found.pop("environment")
    assert set(found) == {"serve", "lambda", "serve-postgres", "lambda-postgres"}
    for shape in found.values():
        assert 0 < shape["median_ms"] < 60_000
        assert shape["runs"] == 1
    assert "serve " in done.stdout
