"""scripts/bench/serve.py: the benchmarks' baselines run under the server ``wavehook serve`` runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

from receiver.http.connections import GuardedProtocol
from receiver.http.server import uvicorn_options
from receiver.settings import Settings
from tests.integration.receiver_client import raw_exchange
from tests.scripts.conftest import SCRIPTS
from tests.support import Process, free_port, running


def test_the_options_are_serves_from_the_settings() -> None:
    """The protocol with serve's deadlines, the keep-alive and proxy settings from the environment, no access log,
    no server header, no WebSocket protocol; the connection cap within the descriptor limit."""
    settings = Settings.from_env({"WAVEHOOK_KEEP_ALIVE_SECONDS": "7", "WAVEHOOK_MAX_CONNECTIONS": "50"})
    options = uvicorn_options(settings, workers=2, access_log=True)
    assert options["http"] is GuardedProtocol
    assert (options["timeout_keep_alive"], options["limit_concurrency"]) == (7, 50)
    assert (options["workers"], options["access_log"], options["server_header"], options["ws"]) == (
        2,
        True,
        False,
        "none",
    )
    assert options["forwarded_allow_ips"] == settings.forwarded_allow_ips
    assert options["log_config"] is None


@pytest.mark.integration
def test_the_bare_baseline_has_serves_protocol_and_limits(tmp_path: Path) -> None:
    """The bare app answers as a bare app, with no server header, and refuses headers over
    WAVEHOOK_MAX_HEADER_BYTES with serve's JSON 431: the same protocol class and limits as ``wavehook serve``."""
    port = free_port()
    process = Process(
        [sys.executable, "-m", "bench.serve", "bare", "--port", str(port)],
        env={"PYTHONPATH": SCRIPTS, "WAVEHOOK_MAX_HEADER_BYTES": "4096"},
        log_path=tmp_path / "bare.log",
    )
    with running(process, f"http://127.0.0.1:{port}/healthz"):
        answer = httpx.post(f"http://127.0.0.1:{port}/webhooks/wavespeed", content=b"{}", timeout=5)
        assert answer.json() == {"received": True, "duplicate": False}
        assert "server" not in answer.headers
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nx-pad: " + b"a" * 5000 + b"\r\n\r\n"
        head, _, body = raw_exchange(port, request).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ")
    assert json.loads(body)["reason"] == "headers_too_large"
