"""The loop the submitter's integration tests run in: a real sandbox process, a real ``wavehook serve`` on
loopback, and settings (or an environment, for the CLI) pointing the submitter at both. The ``loop`` fixture
(in ``conftest.py``) makes the usual one; ``make_loop`` makes one of a test's own."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from receiver.settings import Secret, Settings, SubmitSettings
from tests.integration.dispatch_support import query
from tests.support import ROOT, WAVEHOOK, Process, wait_for

API_KEY = "sandbox-key-not-a-secret-but-never-logged"
# SubmitSettings fields a test may override, and the variables that carry them to the CLI.
SUBMIT_ENV = {
    "backoff_seconds": "WAVEHOOK_SUBMIT_BACKOFF_SECONDS",
    "unknown_grace_seconds": "WAVEHOOK_UNKNOWN_GRACE_SECONDS",
    "connect_timeout_seconds": "WAVEHOOK_CONNECT_TIMEOUT_SECONDS",
    "read_timeout_seconds": "WAVEHOOK_READ_TIMEOUT_SECONDS",
    "retries": "WAVEHOOK_SUBMIT_RETRIES",
    "allow_extra_inputs": "WAVEHOOK_ALLOW_EXTRA_INPUTS",
}


@dataclasses.dataclass
class Loop:
    sandbox: Process
    receiver: Process
    settings: Settings
    env: dict[str, str]

    @property
    def db(self) -> Path:
        return self.settings.db_path

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return query(self.db, sql, *params)

    def sandbox_status(self) -> dict[str, Any]:
        status: dict[str, Any] = httpx.get(f"{self.sandbox.url}/_sandbox/status", timeout=5).json()  # type: ignore[attr-defined]
        return status

    def settled(self) -> bool:
        """Every sandbox task has ended and every delivery attempt is over."""
        status = self.sandbox_status()
        return bool(status["open_tasks"] == 0 and status["busy"] == 0)

    def wait_final(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Until ``count`` predictions in the ledger are completed or failed."""
        sql = "SELECT * FROM predictions WHERE status IN ('completed', 'failed')"
        rows: list[dict[str, Any]] = wait_for(
            lambda: (found := self.rows(sql)) and len(found) >= count and found,
            timeout=timeout,
            what=f"{count} final predictions in the ledger",
        )
        return rows

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return self.clis([list(args)], timeout=timeout)[0]

    def clis(self, commands: list[list[str]], timeout: float = 60.0) -> list[subprocess.CompletedProcess[str]]:
        """Run several ``wavehook`` commands at once (each is a process of its own); their results in order."""
        started = [
            (
                args,
                subprocess.Popen(
                    [WAVEHOOK, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
                ),
            )
            for args in commands
        ]
        done = []
        for args, proc in started:
            out, err = proc.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess([WAVEHOOK, *args], proc.returncode, out, err))
        return done


def make_loop(sandbox: Process, receiver: Process, settings_factory: Callable[..., Settings], **submit: Any) -> Loop:
    """The submitter's settings and CLI environment for ``sandbox`` and ``receiver`` (same ledger);
    ``submit`` overrides SubmitSettings fields (the CLI gets them through their variables)."""
    submit_settings = SubmitSettings(**{"backoff_seconds": 0.01, "unknown_grace_seconds": 5.0, **submit})
    settings = settings_factory(
        api_key=Secret(API_KEY),
        base_url=sandbox.url,  # type: ignore[attr-defined]
        public_url=receiver.url,  # type: ignore[attr-defined]
        submit=submit_settings,
    )
    env = {
        **receiver.env,
        "WAVESPEED_API_KEY": API_KEY,
        "WAVESPEED_BASE_URL": sandbox.url,  # type: ignore[attr-defined]
        "WAVEHOOK_PUBLIC_URL": receiver.url,  # type: ignore[attr-defined]
        "WAVEHOOK_DB": str(settings.db_path),
        "WAVEHOOK_DOWNLOAD": "false",
        **{SUBMIT_ENV[name]: str(value) for name, value in submit.items()},
    }
    assert receiver.db == settings.db_path  # type: ignore[attr-defined]
    return Loop(sandbox, receiver, settings, env)
