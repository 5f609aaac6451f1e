"""Refused deliveries against real processes: a sandbox signing with another secret than the receiver's."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import SECRET
from tests.support import ROOT, WAVEHOOK, Process

pytestmark = pytest.mark.integration

OTHER = "whsec_c29tZS1vdGhlci1hY2NvdW50cy1zZWNyZXQ="
MODEL = "bytedance/seedance-v1-lite-t2v-480p"


def submit_and_wait(sandbox: Process, receiver: Process, **env: str) -> subprocess.CompletedProcess[str]:
    """``wavehook submit --wait`` of one job through the sandbox, giving up after 6 s (no provider fallback)."""
    return subprocess.run(
        [WAVEHOOK, "submit", MODEL, "-p", "prompt=a fox", "--wait", "--timeout", "6s", "--fallback-after", "1h"],
        env={
            **receiver.env,
            "WAVESPEED_API_KEY": "any",
            "WAVESPEED_BASE_URL": sandbox.url,  # type: ignore[attr-defined]
            "WAVEHOOK_PUBLIC_URL": receiver.url,  # type: ignore[attr-defined]
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


def test_submit_wait_names_the_refusals_of_its_job(
    sandbox_factory: Callable[..., Process], serve_factory: Callable[..., Process]
) -> None:
    """With mismatched secrets, ``submit --wait`` says signature_mismatch and what to check, /api/summary counts
    it under the job's id, and the ledger holds nothing of the refused deliveries."""
    sandbox = sandbox_factory(secret=OTHER)  # the last --secret wins: the provider signs with another secret
    receiver = serve_factory(env={"WAVEHOOK_DOWNLOAD": "false"})
    done = submit_and_wait(sandbox, receiver)
    assert done.returncode == 4, done.stderr
    assert "signature_mismatch" in done.stderr
    assert "WAVESPEED_WEBHOOK_SECRET" in done.stderr
    assert "of this job" in done.stderr
    summary = httpx.get(f"{receiver.url}/api/summary", timeout=5).json()  # type: ignore[attr-defined]
    refused = summary["refused_deliveries"]["signature_mismatch"]
    with sqlite3.connect(receiver.db) as conn:  # type: ignore[attr-defined]
        (prediction_id,) = conn.execute("SELECT id FROM predictions").fetchone()
        (events,) = conn.execute("SELECT count(*) FROM events").fetchone()
        (kept,) = conn.execute("SELECT count(*) FROM quarantine").fetchone()
    conn.close()
    assert refused["count"] >= 1
    assert refused["last_webhook_id"] == prediction_id  # the sandbox, like the provider, uses the task id
    assert (events, kept) == (0, 0)
    assert "deliveries_refused" in receiver.log()  # the warning line, once
    assert SECRET.removeprefix("whsec_") not in done.stderr + receiver.log()


def test_wrong_token_is_quarantined_and_named(
    sandbox_factory: Callable[..., Process],
    serve_factory: Callable[..., Process],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A job submitted against another ledger than the receiver's: its signed deliveries are refused with
    token_mismatch and kept in the receiver's quarantine; ``submit --wait`` names the reason and its advice."""
    sandbox = sandbox_factory()
    receiver = serve_factory(env={"WAVEHOOK_DOWNLOAD": "false"})
    other_ledger = tmp_path_factory.mktemp("elsewhere") / "wavehook.db"
    done = submit_and_wait(sandbox, receiver, WAVEHOOK_DB=str(other_ledger))
    assert done.returncode == 4, done.stderr
    assert "token_mismatch" in done.stderr
    assert "WAVEHOOK_DB" in done.stderr
    with sqlite3.connect(receiver.db) as conn:  # type: ignore[attr-defined]
        reasons = {row[0] for row in conn.execute("SELECT reason FROM quarantine")}
    conn.close()
    assert reasons == {"token_mismatch"}
