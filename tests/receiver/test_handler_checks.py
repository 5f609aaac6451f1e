"""Handler registration is checked at start: statuses, signatures, modules that register nothing, globs, paths."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from receiver.handlers.errors import HandlerConfigError
from receiver.handlers.registry import Registry, default_registry, load_handlers
from receiver.settings import Settings
from tests.conftest import SECRET
from tests.support import WAVEHOOK

NO_ENTRY_POINTS: Callable[..., list[object]] = lambda **_: []  # noqa: E731


@pytest.fixture
def cleanup() -> Iterator[list[str]]:
    """Module names to forget (and their handlers to unregister) after the test."""
    names: list[str] = []
    yield names
    for name in names:
        sys.modules.pop(name, None)
        for handler in default_registry.registered_by(name):
            default_registry._handlers.pop(handler, None)


def test_unknown_status_stops_the_start_naming_the_handler(settings_factory: Callable[..., Settings]) -> None:
    """status="complete" is refused with the handler's name and a did-you-mean."""
    registry = Registry()
    registry.on("*", status="complete", name="notify_team")(lambda prediction, ctx: None)
    with pytest.raises(HandlerConfigError, match=r"'notify_team': status='complete'.*did you mean 'completed'"):
        registry.select(settings_factory())


def test_a_configured_terminal_status_is_accepted(settings_factory: Callable[..., Settings]) -> None:
    """Statuses come from WAVEHOOK_TERMINAL_STATUSES, so a provider's new final status can be handled."""
    registry = Registry()
    registry.on("*", status="expired", name="on_expired")(lambda prediction, ctx: None)
    handlers = registry.select(settings_factory(terminal_statuses=("completed", "failed", "expired")))
    assert handlers.route("m", "expired") == ("on_expired",)


@pytest.mark.parametrize(
    "func",
    [lambda: None, lambda prediction: None, lambda prediction, ctx, extra: None],
    ids=["no-arguments", "one-argument", "three-required"],
)
def test_a_function_that_does_not_take_prediction_and_ctx_is_refused(func: Callable[..., None]) -> None:
    """The handler's name and its actual signature are in the message."""
    with pytest.raises(HandlerConfigError, match=r"handler 'bad' .* must take two arguments, \(prediction, ctx\)"):
        Registry().on("*", name="bad")(func)


def test_flexible_signatures_are_accepted() -> None:
    """Defaults and *args are fine: what matters is that (prediction, ctx) binds."""
    registry = Registry()
    registry.on("*", name="a")(lambda prediction, ctx, extra=1: None)
    registry.on("*", name="b")(lambda *args: None)


def test_a_module_that_registers_nothing_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings_factory: Callable[..., Settings], cleanup: list[str]
) -> None:
    """A module imported for its handlers that registers none is named, with how to register one."""
    (tmp_path / "wavehook_test_empty.py").write_text("def notify(prediction, ctx):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cleanup.append("wavehook_test_empty")
    settings = settings_factory(handler_modules=("wavehook_test_empty",))
    with pytest.raises(HandlerConfigError, match=r"module 'wavehook_test_empty' registers no handler.*@on"):
        load_handlers(settings, entry_points=NO_ENTRY_POINTS)


def test_a_file_path_is_accepted(tmp_path: Path, settings_factory: Callable[..., Settings], cleanup: list[str]) -> None:
    """WAVEHOOK_HANDLERS may name a .py file; its neighbours import as from its own directory."""
    (tmp_path / "wavehook_test_helper.py").write_text("GREETING = 'hi'\n")
    (tmp_path / "wavehook_test_by_path.py").write_text(
        "from receiver.handlers import on\n"
        "from wavehook_test_helper import GREETING\n"
        "@on('*', name='by_path')\n"
        "def by_path(prediction, ctx):\n"
        "    return GREETING\n"
    )
    cleanup.extend(["wavehook_test_by_path", "wavehook_test_helper"])
    settings = settings_factory(handler_modules=(str(tmp_path / "wavehook_test_by_path.py"),))
    assert "by_path" in load_handlers(settings, entry_points=NO_ENTRY_POINTS).names


def test_a_missing_file_and_a_broken_module_say_where(
    tmp_path: Path, settings_factory: Callable[..., Settings], cleanup: list[str]
) -> None:
    """A file that is not there names the path looked at; an error inside the module names its file and line."""
    missing = settings_factory(handler_modules=(str(tmp_path / "nope.py"),))
    with pytest.raises(HandlerConfigError, match=r"handler file .*nope.py' does not exist"):
        load_handlers(missing, entry_points=NO_ENTRY_POINTS)
    (tmp_path / "wavehook_test_broken.py").write_text("import json\n\nraise RuntimeError('no token configured')\n")
    cleanup.append("wavehook_test_broken")
    broken = settings_factory(handler_modules=(str(tmp_path / "wavehook_test_broken.py"),))
    where = r"RuntimeError: no token configured \(at .*wavehook_test_broken.py:3\)"
    with pytest.raises(HandlerConfigError, match=where):
        load_handlers(broken, entry_points=NO_ENTRY_POINTS)


def test_a_glob_matching_no_catalogued_model_is_a_warning(settings_factory: Callable[..., Settings]) -> None:
    """A typo in a model glob starts anyway (the model may be outside the catalog) but is logged as a warning."""
    registry = Registry()
    registry.on("bytedance/seedanse-*", name="typo")(lambda prediction, ctx: None)
    registry.on("bytedance/seedance-*", name="fine")(lambda prediction, ctx: None)
    known = ("bytedance/seedance-v1-lite-t2v-480p", "bytedance/waver-1.0")
    with capture_logs() as logs:
        load_handlers(settings_factory(), registry=registry, entry_points=NO_ENTRY_POINTS, known_models=known)
    warned = [line for line in logs if line["event"] == "handler_glob_matches_no_catalogued_model"]
    assert [(line["handler"], line["model"]) for line in warned] == [("typo", "bytedance/seedanse-*")]


def test_the_catalog_is_read_only_for_a_glob_narrower_than_any_model(settings_factory: Callable[..., Settings]) -> None:
    """Given as a function, the catalog is read only when some handler's glob is more than ``*`` (which matches
    every model): a start with only such handlers never loads it."""
    reads: list[int] = []

    def catalog() -> tuple[str, ...]:
        reads.append(1)
        return ("bytedance/seedance-v1-lite-t2v-480p",)

    registry = Registry()
    registry.on("*", name="everything")(lambda prediction, ctx: None)
    load_handlers(settings_factory(), registry=registry, entry_points=NO_ENTRY_POINTS, known_models=catalog)
    assert reads == []
    registry.on("bytedance/seedanse-*", name="typo")(lambda prediction, ctx: None)
    with capture_logs() as logs:
        load_handlers(settings_factory(), registry=registry, entry_points=NO_ENTRY_POINTS, known_models=catalog)
    assert reads == [1]
    warned = [line["handler"] for line in logs if line["event"] == "handler_glob_matches_no_catalogued_model"]
    assert warned == ["typo"]


def test_serve_finds_a_handler_module_in_the_current_directory(tmp_path: Path) -> None:
    """As uvicorn finds its app: `wavehook serve` run from the handler's directory imports it by name (the
    console script's sys.path does not hold the current directory); a bad one stops the start naming it."""
    (tmp_path / "teamchat.py").write_text(
        "from receiver.handlers import on\n@on('*', status='complete')\ndef notify(prediction, ctx):\n    pass\n"
    )
    env = {"WAVESPEED_WEBHOOK_SECRET": SECRET, "WAVEHOOK_HANDLERS": "teamchat", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [WAVEHOOK, "serve", "--port", "0"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "handler 'teamchat.notify': status='complete'" in done.stderr
    assert "did you mean 'completed'" in done.stderr
    assert not (tmp_path / "wavehook.db").exists()  # refused before anything was created


def test_worker_warns_of_a_glob_that_matches_no_catalogued_model(tmp_path: Path) -> None:
    """A real `wavehook worker --burst` loads a module from its directory and warns of a glob with a typo."""
    (tmp_path / "teamchat.py").write_text(
        "from receiver.handlers import on\n@on('bytedance/seedanse-*')\ndef notify(prediction, ctx):\n    pass\n"
    )
    env = {
        "WAVESPEED_WEBHOOK_SECRET": SECRET,
        "WAVEHOOK_HANDLERS": "teamchat",
        "WAVEHOOK_LOG_FORMAT": "json",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [WAVEHOOK, "worker", "--burst"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert '"handler_glob_matches_no_catalogued_model"' in output
    assert '"did_you_mean":"bytedance/seedance-*"' in output
