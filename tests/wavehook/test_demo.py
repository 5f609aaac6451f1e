"""``wavehook demo`` as a person runs it: real processes, a fresh ledger, a table, and Ctrl-C that leaves nothing."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from sandbox.media import SAMPLE_MP4
from submitter import MODELS
from tests.support import WAVEHOOK, wait_for
from wavehook.cli import main
from wavehook.progress import DemoJob, render_table

URL = re.compile(r"^\s+(sandbox|receiver)\s+(http://127\.0\.0\.1:\d+)", re.M)


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def refused(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=1)
    except httpx.ConnectError:
        return True
    return False


@pytest.mark.integration
def test_demo_with_default_settings_completes_every_model_within_a_minute(tmp_path: Path) -> None:
    """Exit 0 within 60 s: five jobs completed in the ledger, each output saved as the real MP4, nothing left over."""
    run = tmp_path / "run"
    started = time.monotonic()
    result = subprocess.run([WAVEHOOK, "demo", "--dir", str(run)], capture_output=True, text=True, timeout=90)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert elapsed < 60
    table = result.stdout.split("model ", 1)[1]
    assert len(MODELS) == 5
    for model in MODELS:
        assert re.search(rf"^{re.escape(model)}\s+completed\s+completed\s+\d+\.\d\s+\S+output\.mp4$", table, re.M)
    saved = sorted(run.glob("media/**/output.mp4"))
    assert len(saved) == 5
    assert {path.read_bytes() for path in saved} == {SAMPLE_MP4.read_bytes()}
    conn = sqlite3.connect(run / "wavehook.db")
    try:
        assert conn.execute("SELECT status, count(*) FROM predictions GROUP BY status").fetchall() == [("completed", 5)]
        assert conn.execute("SELECT count(*) FROM downloads").fetchone() == (5,)
    finally:
        conn.close()
    assert all(refused(url) for _, url in URL.findall(result.stdout))


@pytest.mark.integration
def test_demo_with_failure_expects_the_failed_job(tmp_path: Path) -> None:
    """--with-failure adds a job the sandbox fails; it ends failed as expected, so the demo still exits 0, and the
    user's own wavehook settings (an admin token, handler modules) do not reach the demo's processes."""
    args = ["demo", "--dir", str(tmp_path / "run"), "--with-failure", "--queue-time", "0.1", "--run-time", "0.3"]
    users = {
        "WAVEHOOK_ADMIN_TOKEN": "a-users-own-admin-token-0123456789",
        "WAVEHOOK_HANDLERS": "no_such_module",
        "WAVESPEED_BASE_URL": "http://x",
    }
    result = subprocess.run([WAVEHOOK, *args], capture_output=True, text=True, timeout=90, env={**os.environ, **users})
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^bytedance/seedance-v1-lite-t2v-480p\s+failed\s+failed\s", result.stdout, re.M)
    assert "all jobs ended as expected" in result.stdout


@pytest.mark.integration
@pytest.mark.parametrize("keep", [False, True], ids=["mid-run", "kept"])
def test_ctrl_c_stops_the_demo_and_every_child(tmp_path: Path, keep: bool) -> None:
    """SIGINT, while jobs run or while --keep holds everything up, stops the sandbox and the receiver and exits 130."""
    out = tmp_path / "demo.out"
    args = [WAVEHOOK, "demo", "--dir", str(tmp_path / "run"), "--queue-time", "0.1"]
    args += ["--keep", "--run-time", "0.3"] if keep else ["--run-time", "60"]
    with open(out, "w") as handle:
        demo = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT)
    try:
        ready = "press Ctrl-C" if keep else "dreamina-v3.0-pro/text-to-video"
        wait_for(lambda: ready in out.read_text() or demo.poll() is not None, timeout=60, what=ready)
        assert demo.poll() is None, out.read_text()
        urls = dict(URL.findall(out.read_text()))
        if keep:
            assert httpx.get(f"{urls['receiver']}/").status_code == 200  # the dashboard, for a loopback client
            assert httpx.get(f"{urls['sandbox']}/_sandbox/status").json()["tasks"] == 5
        children = children_of(demo.pid)
        assert len(children) == 2
        demo.send_signal(signal.SIGINT)
        assert demo.wait(30) == 130
    finally:
        if demo.poll() is None:
            demo.kill()
    assert all(gone(pid) for pid in children)
    assert all(refused(url) for url in urls.values())
    assert "interrupted: stopping the receiver and the sandbox" in out.read_text()


def test_demo_refuses_a_directory_that_holds_a_ledger(tmp_path: Path) -> None:
    """--dir naming a directory with a wavehook.db is a usage error: the demo wants a fresh ledger."""
    (tmp_path / "wavehook.db").write_bytes(b"")
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "already holds a ledger" in result.output


def test_table_lines_up_outcomes() -> None:
    """The final table has a header, a rule, and one aligned row per job with seconds to one decimal."""
    done = DemoJob("a/model", {}, status="completed", seconds=3.25, output="media/a/model/1/output.mp4", saved=True)
    failed = DemoJob("b/much-longer-model", {}, expected="failed", status="failed", seconds=0.5)
    lines = render_table([done, failed]).splitlines()
    assert lines[0].split() == ["model", "expected", "final", "seconds", "output"]
    assert set(lines[1]) == {"-"}
    assert lines[2].split() == ["a/model", "completed", "completed", "3.2", "media/a/model/1/output.mp4"]
    assert lines[3].split() == ["b/much-longer-model", "failed", "failed", "0.5", "-"]
    assert lines[2].index("completed") == lines[3].index("failed")
    assert done.as_expected
    assert failed.as_expected
    assert not DemoJob("c", {}, status="completed").as_expected  # completed but its output never saved
