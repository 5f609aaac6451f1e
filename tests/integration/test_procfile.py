"""The Procfile's lines, run as a platform runs them (``bash -c`` with PORT set): the web line answers on
$PORT and records a signed delivery; the worker line runs its handler."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET
from tests.integration.dispatch_support import HANDLERS_MODULE, deliver, effects
from tests.support import ROOT, Process, free_port, running, wait_for

pytestmark = pytest.mark.integration


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {name.strip(): command.strip() for name, _, command in (line.partition(":") for line in lines if line)}


def test_the_procfile_web_and_worker_lines_run(tmp_path: Path) -> None:
    """web: listens on the PORT the platform gives and stores the delivery; worker: runs the handler (dispatch
    is off in the web process here, so only the worker line can have run it)."""
    lines = procfile()
    assert set(lines) == {"web", "worker"}
    port = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PORT": str(port),
        "WAVESPEED_WEBHOOK_SECRET": SECRET,
        "WAVEHOOK_ADMIN_TOKEN": "a" * 32,  # the web line listens beyond loopback, as a deployment does
        "WAVEHOOK_DB": str(tmp_path / "wavehook.db"),
        "WAVEHOOK_LOG_FORMAT": "json",
        "WAVEHOOK_DISPATCH_IN_WEB": "false",
        "WAVEHOOK_DOWNLOAD": "false",
        "WAVEHOOK_HANDLERS": HANDLERS_MODULE,
        "PYTHONPATH": str(ROOT),
        "DISPATCH_TEST_DIR": str(tmp_path),
    }
    web = Process(["bash", "-c", lines["web"]], env=env, log_path=tmp_path / "web.log", cwd=tmp_path)
    worker = Process(["bash", "-c", lines["worker"]], env=env, log_path=tmp_path / "worker.log", cwd=tmp_path)
    with running(web, f"http://127.0.0.1:{port}/healthz"):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            answer = deliver(client, SECRET, "proc-1", "completed", model="bytedance/seedance-v1-lite-t2v-480p")
        assert answer.json() == {"received": True, "duplicate": False}
        worker.start()
        try:
            done = wait_for(
                lambda: len(effects(tmp_path)) == 2 and effects(tmp_path), timeout=30, what="the worker's two handlers"
            )
        finally:
            worker.stop()
    assert {(handler, prediction) for handler, prediction, _status, _pid in done} == {
        ("effect_async", "proc-1"),
        ("effect_sync", "proc-1"),
    }
    assert web.pid not in {pid for *_rest, pid in done}
