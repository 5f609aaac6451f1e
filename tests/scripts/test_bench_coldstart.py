"""scripts/bench_coldstart.py: a tiny run starts real processes and reports a cold start for each target."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT


@pytest.mark.integration
def test_a_tiny_run_reports_every_target(tmp_path: Path, postgres_url: str) -> None:
    """One run of each: serve on a new and on an existing SQLite ledger and on the test suite's PostgreSQL, the
    Lambda handler on both, the bare app, the commands; each a fresh process that answered, a positive time under
    the script's deadline, and no start quicker than an interpreter doing nothing; the ratios are the medians'."""
    figures = tmp_path / "cold.json"
    args = ["--runs", "1", "--json", str(figures), "--postgres", postgres_url]
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_coldstart.py"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(figures.read_text())
    assert found.pop("ratio new ledger / bare") == round(found["wavehook serve, new ledger"] / found["bare"], 2)
    assert found.pop("ratio existing / bare") == round(found["wavehook serve, existing"] / found["bare"], 2)
    assert found.pop("ratio PostgreSQL / bare") == round(found["wavehook serve, PostgreSQL"] / found["bare"], 2)
    assert set(found) == {
        "wavehook serve, new ledger",
        "wavehook serve, existing",
        "bare",
        "Lambda handler",
        "wavehook serve, PostgreSQL",
        "Lambda handler, PostgreSQL",
        "wavehook --help",
        "wavehook models",
        "import receiver.http.app",
        "python -c pass",
    }
    assert all(0 < median < 30_000 for median in found.values())
    starts = ("wavehook serve, new ledger", "wavehook serve, existing", "bare", "wavehook serve, PostgreSQL")
    assert all(found[name] > found["python -c pass"] for name in starts)
    assert "Lambda handler, PostgreSQL" in done.stdout
    assert "wavehook serve, existing / bare" in done.stdout


def test_the_benchmarks_cluster_helper_imports_without_pytest() -> None:
    """``--postgres cluster`` (and bench_ingest) start their server with tests/postgres.py, in a virtualenv
    without the test extras as the README runs them: that module and what it imports must not need pytest."""
    code = "import sys; sys.modules['pytest'] = None; import tests.postgres, tests.pgbouncer"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
