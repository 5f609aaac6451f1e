"""Factory fixtures with safe defaults, shared by every test package."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.settings import Secret, Settings
from receiver.store.ledger import Ledger, open_ledger
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
            db=str(tmp_path / "wavehook.db"),
            media_dir=tmp_path / "media",
            log_format="json",
        )
        return base.replace(**overrides)

    return make


# Every ledger backend the contract tests run against: name -> settings whose ``db`` points at fresh, empty
# storage of that backend (a backend that needs a server adds it here, started by a fixture of its own).
LEDGER_BACKENDS: dict[str, Callable[[Settings], Settings]] = {"sqlite": lambda settings: settings}
LedgerFactory = Callable[..., contextlib.AbstractAsyncContextManager[Ledger]]


@pytest.fixture(params=sorted(LEDGER_BACKENDS))
def ledger_factory(request: pytest.FixtureRequest, settings_factory: Callable[..., Settings]) -> LedgerFactory:
    """``async with ledger_factory(**settings_overrides) as ledger``: an open ledger of each backend in turn,
    on fresh storage, closed afterwards. Two ledgers opened in one test share the storage (as two processes)."""
    settings = LEDGER_BACKENDS[request.param](settings_factory())

    @contextlib.asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[Ledger]:
        async with await open_ledger(settings.replace(**overrides)) as ledger:
            yield ledger

    return make


def serve_process(tmp: Path, port: int, *, workers: int = 1, env: dict[str, str] | None = None) -> Process:
    """A not yet started ``wavehook serve`` on ``port``, signing with ``SECRET``; ledger, media and log in ``tmp``."""
    full_env = {
        "WAVESPEED_WEBHOOK_SECRET": SECRET,
        "WAVEHOOK_DB": str(tmp / "wavehook.db"),
        "WAVEHOOK_MEDIA_DIR": str(tmp / "media"),
        "WAVEHOOK_LOG_FORMAT": "json",
        **(env or {}),
    }
    args = [WAVEHOOK, "serve", "--port", str(port), "--workers", str(workers)]
    return Process(args, env=full_env, log_path=tmp / f"serve-{port}.log", cwd=ROOT)


@pytest.fixture
def serve_factory(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start real ``wavehook serve`` processes on free loopback ports; every one is stopped afterwards.

    Returns a started, healthy Process with ``.url`` (its base URL) and ``.db`` (its ledger file).
    """
    started: list[Any] = []

    def start(*, workers: int = 1, env: dict[str, str] | None = None, port: int | None = None) -> Process:
        port = port or free_port()
        process = serve_process(tmp_path, port, workers=workers, env=env)
        context = running(process, f"http://127.0.0.1:{port}/healthz")
        context.__enter__()
        started.append(context)
        process.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        process.db = Path(process.env["WAVEHOOK_DB"])  # type: ignore[attr-defined]
        return process

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)


# The sandbox's clock for tests: tasks end within ~100 ms, failed deliveries are retried within ~50 ms.
SANDBOX_TEST_OPTIONS = {
    "queue_time": 0.01,
    "run_time": 0.05,
    "retry_initial": 0.05,
    "retry_max": 0.5,
    "retry_window": 60,
    "delivery_timeout": 5,
}


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start real ``wavehook sandbox`` processes on free loopback ports, signing with ``SECRET``; each is stopped
    afterwards. Keyword arguments become options (``faults="duplicate=0.3"`` -> ``--faults duplicate=0.3``)
    over the millisecond defaults of SANDBOX_TEST_OPTIONS.

    Returns a started, healthy Process with ``.url`` (its base URL, for WAVESPEED_BASE_URL) and
    ``.delivery_log`` (the JSON-lines file of every delivery attempt; also GET ``/_sandbox/deliveries``).
    """
    started: list[Any] = []

    def start(**options: Any) -> Process:
        port = free_port()
        log = tmp_path / f"sandbox-{port}-deliveries.jsonl"
        args = [WAVEHOOK, "sandbox", "--port", str(port), "--secret", SECRET, "--delivery-log", str(log)]
        for name, value in {**SANDBOX_TEST_OPTIONS, **options}.items():
            flag = name.replace("_", "-")
            args += (
                [f"--{flag}"] if value is True else [f"--no-{flag}"] if value is False else [f"--{flag}", str(value)]
            )
        process = Process(args, env={"WAVEHOOK_LOG_FORMAT": "json"}, log_path=tmp_path / f"sandbox-{port}.log")
        context = running(process, f"http://127.0.0.1:{port}/healthz")
        context.__enter__()
        started.append(context)
        process.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        process.delivery_log = log  # type: ignore[attr-defined]
        return process

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)
