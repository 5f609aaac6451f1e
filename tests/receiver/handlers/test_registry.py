"""The handler registry: the ``@on`` decorator, routing by model glob and status, loading and its errors."""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import receiver.handlers
from receiver.handlers import Context, HandlerConfigError, Prediction, Registry, load_handlers, on
from receiver.handlers.registry import ENTRY_POINT_GROUP, default_registry
from receiver.settings import DispatchSettings, Settings


def test_public_names_are_exactly_these() -> None:
    """The package exports the registry API and nothing else."""
    assert sorted(receiver.handlers.__all__) == [
        "Context",
        "GiveUp",
        "Handler",
        "HandlerConfigError",
        "Handlers",
        "Prediction",
        "Registry",
        "RetryLater",
        "load_handlers",
        "on",
    ]
    assert on == default_registry.on


def test_routes_by_model_glob_and_status(settings_factory: Callable[..., Settings]) -> None:
    """A handler gets runs for the models its glob matches, for its status or for every terminal status."""
    registry = Registry()

    @registry.on("bytedance/seedance-*", status="completed")
    async def clips(prediction: Prediction, ctx: Context) -> None: ...

    @registry.on("*", name="every")
    def every(prediction: Prediction, ctx: Context) -> None: ...

    @registry.on("bytedance/dreamina-*", status=("failed", "timeout"), name="dreamina_failures")
    def failures(prediction: Prediction, ctx: Context) -> None: ...

    handlers = registry.select(settings_factory())
    clip_name = f"{__name__}.test_routes_by_model_glob_and_status.<locals>.clips"
    assert handlers.route("bytedance/seedance-v1-lite-t2v-480p", "completed") == tuple(sorted([clip_name, "every"]))
    assert handlers.route("bytedance/seedance-v1-lite-t2v-480p", "failed") == ("every",)
    assert handlers.route("bytedance/dreamina-v3.0/image-to-video-1080p", "timeout") == ("dreamina_failures", "every")
    assert handlers.route(None, "completed") == ("every",)
    assert handlers.get("every") is not None
    assert handlers.get("every").is_async is False  # type: ignore[union-attr]
    assert handlers.get(clip_name).is_async is True  # type: ignore[union-attr]


def test_defaults_come_from_settings_and_options_override_them(settings_factory: Callable[..., Settings]) -> None:
    """timeout= and max_attempts= override the settings' defaults for one handler only."""
    registry = Registry()

    @registry.on("*", name="plain")
    async def plain(prediction: Prediction, ctx: Context) -> None: ...

    @registry.on("*", name="tuned", timeout=2.5, max_attempts=9)
    async def tuned(prediction: Prediction, ctx: Context) -> None: ...

    settings = settings_factory(dispatch=DispatchSettings(handler_timeout_seconds=30, max_attempts=4))
    handlers = registry.select(settings)
    plain_handler, tuned_handler = handlers.get("plain"), handlers.get("tuned")
    assert plain_handler is not None
    assert tuned_handler is not None
    assert (plain_handler.timeout, plain_handler.max_attempts) == (30, 4)
    assert (tuned_handler.timeout, tuned_handler.max_attempts) == (2.5, 9)


def test_a_duplicate_name_is_an_error_naming_both() -> None:
    """Registering a second handler under a name already taken fails, naming both functions."""
    registry = Registry()

    @registry.on("*", name="store_clip")
    async def first(prediction: Prediction, ctx: Context) -> None: ...

    with pytest.raises(HandlerConfigError, match=r"'store_clip' is registered twice .*first.*second"):

        @registry.on("a/*", name="store_clip")
        async def second(prediction: Prediction, ctx: Context) -> None: ...


@pytest.mark.parametrize(("options", "message"), [({"timeout": 0}, "timeout=0"), ({"max_attempts": 0}, "max_attempts")])
def test_bad_options_are_refused(options: dict[str, int], message: str) -> None:
    """A non-positive timeout or attempt count is refused when the decorator is applied."""
    with pytest.raises(HandlerConfigError, match=message):
        Registry().on("*", **options)  # type: ignore[arg-type]


def test_built_ins_are_enabled_by_settings(settings_factory: Callable[..., Settings]) -> None:
    """log and download_outputs are on by default; forward only with a URL; each can be switched off."""
    defaults = load_handlers(settings_factory())
    assert {"download_outputs", "log"} <= set(defaults.names)
    assert "forward" not in defaults.names
    forwarding = load_handlers(
        settings_factory(
            dispatch=DispatchSettings(download=False, log_outcomes=False, forward_url="http://127.0.0.1:9/hook")
        )
    )
    assert "forward" in forwarding.names
    assert not {"download_outputs", "log"} & set(forwarding.names)
    assert defaults.route("any/model", "failed") == ("log",)
    assert defaults.route("any/model", "completed") == ("download_outputs", "log")


@pytest.fixture
def handler_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A user module on the import path that registers one handler when imported."""
    name = "wavehook_test_user_handlers"
    (tmp_path / f"{name}.py").write_text(
        "from receiver.handlers import on\n"
        "@on('user/*', status='completed', name='user_store_clip')\n"
        "async def store_clip(prediction, ctx):\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)
    default_registry._handlers.pop("user_store_clip", None)


def test_loads_modules_from_settings(handler_module: str, settings_factory: Callable[..., Settings]) -> None:
    """Modules named in WAVEHOOK_HANDLERS are imported and their handlers routed."""
    handlers = load_handlers(settings_factory(handler_modules=(handler_module,)), entry_points=lambda **_: [])
    assert handlers.route("user/model", "completed") == ("download_outputs", "log", "user_store_clip")


def test_loads_entry_points(handler_module: str, settings_factory: Callable[..., Settings]) -> None:
    """Entry points in the wavehook.handlers group are loaded like WAVEHOOK_HANDLERS modules."""
    seen: list[str] = []

    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        seen.append(group)
        return [importlib.metadata.EntryPoint(name="user", value=handler_module, group=group)]

    handlers = load_handlers(settings_factory(), entry_points=entry_points)
    assert seen == [ENTRY_POINT_GROUP]
    assert "user_store_clip" in handlers.names


def test_an_unimportable_module_is_a_config_error(settings_factory: Callable[..., Settings]) -> None:
    """A module that cannot be imported stops the start with its name and the sys.path searched."""
    settings = settings_factory(handler_modules=("no_such_module_for_wavehook",))
    with pytest.raises(HandlerConfigError, match=r"WAVEHOOK_HANDLERS: no handler module 'no_such_module.*searched"):
        load_handlers(settings, entry_points=lambda **_: [])


@pytest.mark.usefixtures("backend")  # each ledger backend in turn
def test_the_log_built_in_writes_one_line_per_outcome(settings_factory: Callable[..., Settings]) -> None:
    """The log handler writes one prediction_outcome line with the outcome's summary."""
    from structlog.testing import capture_logs

    from tests.receiver.dispatch_support import harness, run

    settings = settings_factory(dispatch=DispatchSettings(download=False))

    async def scenario() -> None:
        async with harness(settings, load_handlers(settings)) as h:
            await h.deliver("p1", "failed", error="out of memory")
            await h.dispatcher().run_once()

    with capture_logs() as logs:
        run(scenario())
    (line,) = [entry for entry in logs if entry["event"] == "prediction_outcome"]
    assert (line["prediction_id"], line["status"], line["error"], line["outputs"]) == (
        "p1",
        "failed",
        "out of memory",
        0,
    )
    assert line["handler"] == "log"
