"""On a terminal, log lines never land inside a progress bar, and ``--quiet`` keeps info lines out (a real
``wavehook batch`` in a pseudo-terminal, against a real sandbox and receiver)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import ROOT, WAVEHOOK, Process

pytestmark = pytest.mark.integration
MODEL = "bytedance/seedance-v1-lite-t2v-480p"


def on_terminal(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run ``wavehook ARGS`` with stdout and stderr on a pseudo-terminal; everything it wrote there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([WAVEHOOK, *args], env=env, cwd=cwd, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            proc.kill()
            raise AssertionError("no output for 60 s")
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(30)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_batch_logs_wait_for_the_progress_bar(
    sandbox_factory: Callable[..., Process], serve_factory: Callable[..., Process], tmp_path: Path
) -> None:
    """Every log line is written before the bar is first drawn or after it is done; --quiet drops info lines."""
    sandbox = sandbox_factory()
    receiver = serve_factory(env={"WAVEHOOK_DOWNLOAD": "false"})
    env = {
        **receiver.env,
        "WAVESPEED_API_KEY": "any",
        "WAVESPEED_BASE_URL": sandbox.url,  # type: ignore[attr-defined]
        "WAVEHOOK_PUBLIC_URL": receiver.url,  # type: ignore[attr-defined]
        "WAVEHOOK_LOG_FORMAT": "json",
        "COLUMNS": "100",
    }
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"model": MODEL, "input": {"prompt": f"fox {n}"}}) + "\n" for n in range(6)))
    output = on_terminal(["batch", str(jobs), "--concurrency", "2"], env, ROOT)
    assert "submitting" in output, output
    first_bar = output.index("submitting")
    last_bar = output.rindex("6/6")
    inside = output[first_bar:last_bar]
    assert '{"' not in inside, f"a log line inside the bar:\n{inside!r}"
    assert '"event":"' in output[last_bar:] or '"event":"' in output[:first_bar]  # the lines are there
    quiet = on_terminal(["--quiet", "batch", str(jobs)], env, ROOT)  # sends nothing twice: all skipped
    assert '"level":"info"' not in quiet
    assert "6 already sent" in quiet
