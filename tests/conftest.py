"""Factory fixtures with safe defaults, shared by every test package."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.handlers.registry import default_registry
from receiver.settings import Secret, Settings
from receiver.store.ledger import Ledger, open_ledger
from tests import postgres
from tests.support import ROOT, WAVEHOOK, Process, free_port, is_url, running, server_unavailable

# The S3-compatible server on loopback (fixtures s3_server and bucket) for the object-storage tests.
pytest_plugins = ["tests.s3_server"]

SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLXdhdmVob29r"


@pytest.fixture(autouse=True)
def _handler_registry_restored() -> Iterator[None]:
    """A test that loads a user's handler modules in this process (``load_handlers``, or a Submitter routing
    a final status) leaves the process's one registry as it found it: the handlers it added go, and so do their
    modules, so a later test loading the same module registers them afresh and no other test routes to them.
    The built-ins stay: they register once per process, as in production."""
    before = dict(default_registry._handlers)
    modules = set(sys.modules)
    yield
    for name, handler in list(default_registry._handlers.items()):
        module = handler.func.__module__
        if name in before or module.startswith("receiver."):
            continue
        del default_registry._handlers[name]
        if module not in modules:
            sys.modules.pop(module, None)


@pytest.fixture
def secret() -> str:
    return SECRET


@pytest.fixture
def settings_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a fresh ledger in the test's own directory; override any field by keyword.

    A test that uses the ``backend`` fixture (directly, or its module by ``pytest.mark.usefixtures("backend")``)
    runs once per ledger backend, its ledger on fresh storage of that backend.
    """
    db = str(tmp_path / "wavehook.db")
    if "backend" in request.fixturenames:
        db = LEDGER_BACKENDS[request.getfixturevalue("backend")](request, db)

    def make(**overrides: Any) -> Settings:
        base = Settings(
            webhook_secrets=(Secret(SECRET),),
            db=db,
            media_dir=tmp_path / "media",
            log_format="json",
        )
        return base.replace(**overrides)

    return make


# Every ledger backend the contract tests run against: name -> the ``db`` of fresh storage of that backend
# (PostgreSQL: a new database on the throwaway server the session starts; see tests/postgres.py).
LEDGER_BACKENDS: dict[str, Callable[[pytest.FixtureRequest, str], str]] = {
    "sqlite": lambda _request, path: path,
    "postgresql": lambda request, _path: str(request.getfixturevalue("postgres_url")),
}
LedgerFactory = Callable[..., contextlib.AbstractAsyncContextManager[Ledger]]


@pytest.fixture(params=sorted(LEDGER_BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    """Each ledger backend in turn: tests that take it (directly or through ``ledger_settings``) run on both."""
    return str(request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked ``sqlite_only`` (``postgres_only``) in a module that runs on every backend runs on that
    backend alone."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        wrong = (backend == "postgresql" and item.get_closest_marker("sqlite_only")) or (
            backend == "sqlite" and item.get_closest_marker("postgres_only")
        )
        (dropped if wrong else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def ledger_settings(backend: str, settings_factory: Callable[..., Settings]) -> Callable[..., Settings]:
    """``settings_factory`` whose ``db`` is fresh storage of the ``backend`` under test."""
    return settings_factory


@pytest.fixture
def ledger_factory(ledger_settings: Callable[..., Settings]) -> LedgerFactory:
    """``async with ledger_factory(**settings_overrides) as ledger``: an open ledger of each backend in turn,
    on fresh storage, closed afterwards. Two ledgers opened in one test share the storage (as two processes)."""
    settings = ledger_settings()

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
def serve_factory(
    request: pytest.FixtureRequest, tmp_path: Path, settings_factory: Callable[..., Settings]
) -> Iterator[Callable[..., Process]]:
    """Start real ``wavehook serve`` processes on free loopback ports; every one is stopped afterwards.

    Returns a started, healthy Process with ``.url`` (its base URL) and ``.db`` (its ledger: a file, or the
    PostgreSQL URL of the ``backend`` under test when the test takes that fixture).
    """
    started: list[Any] = []
    backend_db = settings_factory().db if "backend" in request.fixturenames else None

    def start(*, workers: int = 1, env: dict[str, str] | None = None, port: int | None = None) -> Process:
        port = port or free_port()
        if backend_db is not None:
            env = {"WAVEHOOK_DB": backend_db, **(env or {})}
        process = serve_process(tmp_path, port, workers=workers, env=env)
        context = running(process, f"http://127.0.0.1:{port}/healthz")
        context.__enter__()
        started.append(context)
        process.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        db = process.env["WAVEHOOK_DB"]
        process.db = db if is_url(db) else Path(db)  # type: ignore[attr-defined]
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.Cluster]:
    """One throwaway PostgreSQL server for the whole run (see tests/postgres.py); removed at the end.

    Where none can be started, tests that need it skip with the reason, or fail when ``CI`` is set.
    """
    try:
        with postgres.cluster() as server:
            yield server
    except postgres.ClusterUnavailable as exc:
        server_unavailable(f"no PostgreSQL server could be started: {exc}")


@pytest.fixture(scope="session")
def postgres_databases(postgres_server: postgres.Cluster) -> postgres.Databases:
    return postgres.Databases(postgres_server)


@pytest.fixture
def postgres_url(postgres_databases: postgres.Databases) -> Iterator[str]:
    """The URL of a fresh, migrated PostgreSQL ledger, dropped after the test."""
    url = postgres_databases.create()
    yield url
    postgres_databases.drop(url)
