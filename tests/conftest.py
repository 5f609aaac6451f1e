"""Factory fixtures with safe defaults, shared by every test package."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.settings import Secret, Settings
from tests.support import ROOT, WAVEHOOK, Process, free_port, running

SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLXdhdmVob29r"


@pytest.fixture
def secret() -> str:
    return SECRET


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a fresh ledger in the test's own directory; override any field by keyword."""

    def make(**overrides: Any) -> Settings:
        base = Settings(
            webhook_secrets=(Secret(SECRET),),
            db_path=tmp_path / "wavehook.db",
            media_dir=tmp_path / "media",
            log_format="json",
        )
        return base.replace(**overrides)

    return make


@pytest.fixture
def serve_factory(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start real ``wavehook serve`` processes on free loopback ports; every one is stopped afterwards.

    Returns a started, healthy Process with ``.url`` (its base URL) and ``.db`` (its ledger file).
    """
    started: list[Any] = []

    def start(*, workers: int = 1, env: dict[str, str] | None = None, port: int | None = None) -> Process:
        port = port or free_port()
        db = tmp_path / "wavehook.db"
        full_env = {
            "WAVESPEED_WEBHOOK_SECRET": SECRET,
            "WAVEHOOK_DB": str(db),
            "WAVEHOOK_MEDIA_DIR": str(tmp_path / "media"),
            "WAVEHOOK_LOG_FORMAT": "json",
            **(env or {}),
        }
        process = Process(
            [WAVEHOOK, "serve", "--port", str(port), "--workers", str(workers)],
            env=full_env,
            log_path=tmp_path / f"serve-{port}.log",
            cwd=ROOT,
        )
        context = running(process, f"http://127.0.0.1:{port}/healthz")
        context.__enter__()
        started.append(context)
        process.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        process.db = Path(full_env["WAVEHOOK_DB"])  # type: ignore[attr-defined]
        return process

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)
