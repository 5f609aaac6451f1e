"""scripts/bench_coldstart.py: one run of each start, every figure a real start answered 200."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT


@pytest.mark.integration
def test_one_run_times_each_start_and_both_ratios(tmp_path: Path) -> None:
    """wavehook on a new and on an existing ledger and the bare app each start and answer a signed delivery;
    the ratios are those of the medians, and no start is quicker than an interpreter doing nothing."""
    figures = tmp_path / "coldstart.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_coldstart.py"), "--runs", "1", "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(figures.read_text())
    starts = ("wavehook serve, new ledger", "wavehook serve, existing", "bare")
    assert all(found[name] > found["python -c pass"] for name in starts)
    assert found["ratio new ledger / bare"] == round(found["wavehook serve, new ledger"] / found["bare"], 2)
    assert found["ratio existing / bare"] == round(found["wavehook serve, existing"] / found["bare"], 2)
    assert "wavehook serve, existing / bare" in done.stdout
