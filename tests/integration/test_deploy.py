"""Deployment shapes with real processes: the port container platforms give, and scale to zero (nothing runs
between requests; handlers run from ``wavehook worker --burst``) with outputs in object storage."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from receiver.settings import Settings
from tests.conftest import SECRET
from tests.integration.dispatch_support import query
from tests.integration.submitter_support import API_KEY
from tests.s3_server import Bucket
from tests.support import ROOT, WAVEHOOK, Process, free_port, running, wait_for

pytestmark = pytest.mark.integration
T2V = "bytedance/seedance-v1-lite-t2v-480p"


def answers(address: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``address:port``. A socket bound to 127.0.0.1 does not
    accept on 127.0.0.2 (another loopback address), one bound to 0.0.0.0 does: no outside interface needed."""
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) == 0


def _serve(tmp_path: Path, args: list[str], env: dict[str, str]) -> Process:
    """A not yet started ``wavehook serve`` with ``args`` (no --port unless given)."""
    base = {
        "WAVESPEED_WEBHOOK_SECRET": SECRET,
        "WAVEHOOK_DB": str(tmp_path / "wavehook.db"),
        "WAVEHOOK_LOG_FORMAT": "json",
    }
    return Process([WAVEHOOK, "serve", *args], env={**base, **env}, log_path=tmp_path / "serve.log", cwd=ROOT)


def test_serve_listens_on_port_from_the_environment_and_on_loopback_unless_told(tmp_path: Path) -> None:
    """Without --port, serve listens on $PORT (as container platforms set it), on 127.0.0.1 only; --port wins
    over PORT; WAVEHOOK_HOST=0.0.0.0 (or --host) is what opens every interface."""
    port, other, third = free_port(), free_port(), free_port()
    with running(_serve(tmp_path, [], {"PORT": str(port)}), f"http://127.0.0.1:{port}/healthz"):
        assert answers("127.0.0.1", port)
        assert not answers("127.0.0.2", port)
    with running(_serve(tmp_path, ["--port", str(other)], {"PORT": str(port)}), f"http://127.0.0.1:{other}/healthz"):
        assert answers("127.0.0.1", other)
        assert not answers("127.0.0.1", port)
    with running(
        _serve(tmp_path, [], {"PORT": str(third), "WAVEHOOK_HOST": "0.0.0.0", "WAVEHOOK_ADMIN_TOKEN": "a" * 32}),
        f"http://127.0.0.1:{third}/healthz",
    ):
        assert answers("127.0.0.2", third)


def test_a_bad_port_is_refused_with_its_name(tmp_path: Path) -> None:
    """PORT that is not a TCP port stops serve before it starts, naming the variable."""
    env = {"WAVESPEED_WEBHOOK_SECRET": SECRET, "WAVEHOOK_DB": str(tmp_path / "x.db"), "PORT": "70000"}
    result = subprocess.run([WAVEHOOK, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "PORT=70000 is not a TCP port (1-65535)" in result.stderr


def test_wavehook_host_beyond_loopback_needs_the_admin_token_like_host(tmp_path: Path) -> None:
    """WAVEHOOK_HOST=0.0.0.0 without WAVEHOOK_ADMIN_TOKEN is refused at start as --host 0.0.0.0 is, naming both
    variables and the opt-in, before anything listens."""
    port = free_port()
    env = {"WAVESPEED_WEBHOOK_SECRET": SECRET, "WAVEHOOK_DB": str(tmp_path / "x.db"), "PORT": str(port)}
    result = subprocess.run(
        [WAVEHOOK, "serve"], env={**env, "WAVEHOOK_HOST": "0.0.0.0"}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert "serve would listen on 0.0.0.0 (--host, else WAVEHOOK_HOST)" in result.stderr
    assert "WAVEHOOK_ADMIN_TOKEN" in result.stderr
    assert "WAVEHOOK_ALLOW_NO_ADMIN_TOKEN=true" in result.stderr
    assert not answers("127.0.0.1", port)


def _cli(env: dict[str, str], *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WAVEHOOK, *args], env=env, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def test_scale_to_zero_handlers_run_only_from_burst_workers(
    tmp_path: Path,
    ledger_settings: Callable[..., Settings],
    sandbox_factory: Callable[..., Process],
    serve_factory: Callable[..., Process],
    bucket: Bucket,
) -> None:
    """With WAVEHOOK_DISPATCH_IN_WEB=false the web process only records: no handler runs there. A
    ``worker --burst`` reconciles the job whose webhook was dropped, runs every due handler (outputs go to the
    bucket with the recorded sha256), prints its counts and exits 0; the next burst finds nothing to do. On
    each ledger backend."""
    sandbox = sandbox_factory()
    db = ledger_settings().db
    storage = {**bucket.env(), "WAVEHOOK_DOWNLOAD_ALLOW_LOOPBACK": "true", "WAVEHOOK_DB": db}
    web = serve_factory(env={"WAVEHOOK_DISPATCH_IN_WEB": "false", **storage})
    env = {
        **web.env,
        "WAVESPEED_API_KEY": API_KEY,
        "WAVESPEED_BASE_URL": sandbox.url,  # type: ignore[attr-defined]
        "WAVEHOOK_PUBLIC_URL": web.url,  # type: ignore[attr-defined]
        "WAVEHOOK_RECONCILE_AFTER_SECONDS": "0",
    }
    for prompt in ("a fox", "an owl", "a heron [sandbox:drop]"):
        submitted = _cli(env, "submit", T2V, "-p", f"prompt={prompt}", "--json")
        assert submitted.returncode == 0, submitted.stderr
    wait_for(
        lambda: len(query(db, "SELECT id FROM predictions WHERE status = 'completed'")) == 2,
        what="the two delivered webhooks to be recorded",
    )
    pending = query(db, "SELECT state FROM handler_runs")
    assert pending
    assert {row["state"] for row in pending} == {"pending"}  # recorded, never started in the web process
    assert bucket.objects() == {}

    first = _cli(env, "worker", "--burst")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("reconcile: checked 1, missed 1,"), first.stdout
    runs = query(db, "SELECT handler, state FROM handler_runs")
    assert {(row["handler"], row["state"]) for row in runs} == {
        ("download_outputs", "succeeded"),
        ("log", "succeeded"),
    }
    assert lines[1] == f"claimed {len(runs)}: {len(runs)} succeeded, 0 to retry, 0 dead", first.stdout

    downloads = query(db, "SELECT * FROM downloads ORDER BY prediction_id")
    assert len(downloads) == 3
    objects = bucket.objects()
    assert sorted(objects) == sorted(row["path"].removeprefix(f"s3://{bucket.name}/") for row in downloads)
    for row in downloads:
        stored = bucket.read(row["path"].removeprefix(f"s3://{bucket.name}/")).content
        assert (hashlib.sha256(stored).hexdigest(), len(stored)) == (row["sha256"], row["size"])
    assert not (tmp_path / "media").exists()

    again = _cli(env, "worker", "--burst")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        "reconcile: " + ", ".join(f"{name} 0" for name in json.loads(_cli(env, "reconcile", "--json").stdout)),
        "claimed 0: 0 succeeded, 0 to retry, 0 dead",
    ]


def test_burst_exits_non_zero_only_on_a_real_failure(tmp_path: Path) -> None:
    """A ledger that cannot be opened (not a database; a PostgreSQL server that is down) is a real failure:
    exit 1 and say which, its password masked; an empty ledger is exit 0."""
    env = {"WAVESPEED_WEBHOOK_SECRET": SECRET, "WAVEHOOK_DB": str(tmp_path / "ok.db"), "WAVEHOOK_LOG_FORMAT": "json"}
    fine = _cli(env, "worker", "--burst")
    assert (fine.returncode, fine.stdout) == (0, "claimed 0: 0 succeeded, 0 to retry, 0 dead\n")
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database" * 100)
    failed = _cli({**env, "WAVEHOOK_DB": str(broken)}, "worker", "--burst")
    assert failed.returncode == 1
    assert f"the ledger {broken} cannot be used" in failed.stderr
    assert "Traceback" not in failed.stderr
    nothing_there = f"postgresql://wavehook:hunter2@127.0.0.1:{free_port()}/ledger"
    down = _cli({**env, "WAVEHOOK_DB": nothing_there}, "worker", "--burst")
    assert down.returncode == 1
    assert "the ledger is unavailable: the PostgreSQL ledger at postgresql://wavehook:***@127.0.0.1:" in down.stderr
    assert "hunter2" not in down.stderr + down.stdout
