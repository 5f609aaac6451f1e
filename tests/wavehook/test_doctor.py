"""``wavehook doctor`` against real processes: a sound deployment passes; a redirecting public URL, a secret
that differs from the receiver's, another ledger and a skewed clock each fail, saying what to fix."""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import ROOT, WAVEHOOK, Process, free_port, serving

pytestmark = pytest.mark.integration

OTHER = "whsec_c29tZS1vdGhlci1hY2NvdW50cy1zZWNyZXQ="


class _Odd(http.server.BaseHTTPRequestHandler):
    """A redirecting front (every path answers 301) whose Date header is an hour behind."""

    def do_GET(self) -> None:
        self.send_response(301)
        self.send_header("location", "https://elsewhere.example/healthz")
        self.send_header("content-length", "0")
        self.end_headers()

    def date_time_string(self, timestamp: float | None = None) -> str:
        return super().date_time_string(time.time() - 3600)

    def log_message(self, *_args: Any) -> None:
        return


def odd_server() -> contextlib.AbstractContextManager[str]:
    return serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Odd))


def doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WAVEHOOK, "doctor"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def lines(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """check name -> its lines (one after the other), e.g. "public URL" -> "WARN  public URL: …"."""
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        match = re.match(r"(OK|WARN|FAIL) +([^:]+):", line)
        if match:
            found[match.group(2)] = (found.get(match.group(2), "") + "\n" + line).strip()
    return found


@pytest.fixture
def deployment(sandbox_factory: Callable[..., Process], serve_factory: Callable[..., Process]) -> dict[str, str]:
    sandbox = sandbox_factory()
    receiver = serve_factory(env={"WAVEHOOK_DOWNLOAD": "false"})
    return {
        **receiver.env,
        "WAVESPEED_BASE_URL": sandbox.url,  # type: ignore[attr-defined]
        "WAVEHOOK_PUBLIC_URL": receiver.url,  # type: ignore[attr-defined]
        "WAVEHOOK_LOG_FORMAT": "json",
    }


def test_a_sound_deployment_passes(deployment: dict[str, str]) -> None:
    """Every check passes (plain http on loopback is only a warning); a signed delivery made the round trip."""
    done = doctor(deployment)
    assert done.returncode == 0, done.stdout + done.stderr
    found = lines(done)
    assert found["secret"].startswith("OK")
    assert found["clock"].startswith("OK")
    assert found["public URL"].startswith("WARN")
    assert "not https" in found["public URL"]
    assert found["ledger"].startswith("OK")
    assert found["round trip"].startswith("OK")
    assert found["handlers"].startswith("OK")
    assert "connections" not in found  # a PostgreSQL check only
    assert "every check passed" in done.stdout


def test_on_postgresql_it_says_how_many_more_processes_the_server_has_room_for(
    sandbox_factory: Callable[..., Process], serve_factory: Callable[..., Process], postgres_url: str
) -> None:
    """A deployment on PostgreSQL passes with the server's connection budget; a pool larger than what is free
    is a warning that names both settings."""
    sandbox = sandbox_factory()
    receiver = serve_factory(env={"WAVEHOOK_DOWNLOAD": "false", "WAVEHOOK_DB": postgres_url})
    env = {
        **receiver.env,
        "WAVESPEED_BASE_URL": sandbox.url,  # type: ignore[attr-defined]
        "WAVEHOOK_PUBLIC_URL": receiver.url,  # type: ignore[attr-defined]
        "WAVEHOOK_LOG_FORMAT": "json",
    }
    done = doctor(env)
    assert done.returncode == 0, done.stdout + done.stderr
    found = lines(done)
    assert found["ledger"].startswith("OK")
    assert found["round trip"].startswith("OK")
    room = re.fullmatch(
        r"OK +connections: PostgreSQL [\d.]+.*: (\d+) of (\d+) connections in use \(max_connections (\d+), (\d+) "
        r"reserved\); each wavehook process opens up to 11 \(WAVEHOOK_DB_POOL_SIZE 10, and one to LISTEN\): "
        r"room for (\d+) more such processes",
        found["connections"],
    )
    assert room, found["connections"]
    in_use, usable, most, reserved, more = (int(n) for n in room.groups())
    assert usable == most - reserved
    assert in_use >= 2  # at least the receiver's pool and its LISTEN connection
    assert more == (usable - in_use) // 11
    crowded = doctor({**env, "WAVEHOOK_DB_POOL_SIZE": str(most)})
    assert crowded.returncode == 0  # a warning, not a failure
    warned = lines(crowded)["connections"]
    assert warned.startswith("WARN")
    assert f"each wavehook process opens up to {most + 1}" in warned
    assert "Raise the server's max_connections, or lower WAVEHOOK_DB_POOL_SIZE" in warned


class _Silent(socketserver.BaseRequestHandler):
    """Takes the connection and never answers (a host behind a firewall that drops packets looks the same)."""

    def handle(self) -> None:
        self.server.accepted += 1  # type: ignore[attr-defined]
        self.server.released.wait(30)  # type: ignore[attr-defined]


def test_a_postgresql_server_that_never_answers_is_waited_for_once(tmp_path: Any) -> None:
    """The connections check finds the server silent: the ledger fails with what happened (the password
    masked), and the doctor does not wait for the connect timeout a second time to open the ledger."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Silent)
    server.daemon_threads = True
    server.accepted = 0  # type: ignore[attr-defined]
    server.released = threading.Event()  # type: ignore[attr-defined]
    port = server.server_address[1]
    env = {
        **os.environ,
        "WAVESPEED_WEBHOOK_SECRET": OTHER,
        "WAVEHOOK_DB": f"postgresql://wavehook:hunter2secret@127.0.0.1:{port}/ledger",
        "WAVEHOOK_BUSY_TIMEOUT_MS": "1000",
        "WAVESPEED_BASE_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens: the clock check fails at once
        "WAVEHOOK_LOG_FORMAT": "json",
    }
    with serving(server):
        try:
            done = doctor(env)
        finally:
            server.released.set()  # type: ignore[attr-defined]
    assert done.returncode == 1
    ledger = lines(done)["ledger"]
    assert ledger.startswith("FAIL")
    assert "connection timeout expired" in ledger
    assert "hunter2secret" not in done.stdout + done.stderr
    assert "connections" not in lines(done)
    assert server.accepted == 1  # type: ignore[attr-defined]


def test_a_redirect_and_a_skewed_clock_fail(deployment: dict[str, str]) -> None:
    """A public URL that answers 301 loses deliveries; a provider whose Date is an hour off means stale refusals."""
    with odd_server() as odd:
        done = doctor({**deployment, "WAVEHOOK_PUBLIC_URL": odd, "WAVESPEED_BASE_URL": odd})
    assert done.returncode == 1
    found = lines(done)
    assert "FAIL  public URL" in found["public URL"]
    assert "answers 301 to https://elsewhere.example/healthz" in found["public URL"]
    assert found["clock"].startswith("FAIL")
    # The Date header has whole seconds, so the skew read from it is an hour give or take one second.
    skew = re.search(r"(\d+) s ahead of the provider's", found["clock"])
    assert skew is not None, found["clock"]
    assert 3599 <= int(skew.group(1)) <= 3601
    assert "round trip" not in found  # not tried through a URL that already failed


def test_another_secret_fails_the_round_trip(deployment: dict[str, str]) -> None:
    """This shell's secret is not the receiver's: the signed self-delivery is refused, and doctor says why."""
    done = doctor({**deployment, "WAVESPEED_WEBHOOK_SECRET": OTHER})
    assert done.returncode == 1
    assert "401 signature_mismatch" in lines(done)["round trip"]
    assert "another WAVESPEED_WEBHOOK_SECRET" in lines(done)["round trip"]


def test_another_ledger_fails_the_round_trip(
    deployment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The receiver accepts the delivery but writes it to its own ledger, not the one this shell names."""
    other = tmp_path_factory.mktemp("other") / "wavehook.db"
    env = {**deployment, "WAVEHOOK_DB": str(other)}
    missing = doctor(env)
    assert lines(missing)["ledger"].startswith("FAIL")
    assert f"no ledger at {other}" in lines(missing)["ledger"]
    subprocess.run([WAVEHOOK, "worker", "--burst"], env=env, cwd=ROOT, capture_output=True, timeout=60, check=True)
    done = doctor(env)  # now the ledger exists, but is not the receiver's
    assert done.returncode == 1
    assert lines(done)["ledger"].startswith("OK")
    assert "not in this ledger" in lines(done)["round trip"]
