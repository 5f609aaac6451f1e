"""The handler registry: ``@on(model_glob, status=...)`` adds a handler; ``load_handlers`` picks the active set.

The default registry below is the only module-level mutable state in wavehook: user modules and built-ins
register into it at import time, and start-up turns it into an immutable ``Handlers`` set once.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import importlib.metadata
import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from receiver.handlers.errors import HandlerConfigError
from receiver.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
ENTRY_POINT_GROUP = "wavehook.handlers"
BUILTIN_MODULE = "receiver.handlers.builtin"


@dataclasses.dataclass(frozen=True, slots=True)
class Handler:
    name: str
    func: Callable[..., Any]
    model: str  # a glob on the model id
    statuses: tuple[str, ...] | None  # None: every terminal status
    timeout: float | None = None  # None: the settings' default
    max_attempts: int | None = None
    enabled: Callable[[Settings], bool] | None = None  # None: always on
    is_async: bool = False

    def matches(self, model: str | None, status: str) -> bool:
        if self.statuses is not None and status not in self.statuses:
            return False
        return fnmatch.fnmatchcase(model or "", self.model)


class Handlers:
    """The active handlers of one process, with defaults applied. Immutable once built."""

    def __init__(self, handlers: Iterable[Handler]) -> None:
        self._by_name = {handler.name: handler for handler in handlers}
        self.names = tuple(sorted(self._by_name))

    def route(self, model: str | None, status: str) -> tuple[str, ...]:
        """Names of the handlers that want a run for this outcome: what ingest enqueues."""
        return tuple(name for name in self.names if self._by_name[name].matches(model, status))

    def get(self, name: str) -> Handler | None:
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[Handler]:
        return iter([self._by_name[name] for name in self.names])

    def __len__(self) -> int:
        return len(self._by_name)


class Registry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def on(
        self,
        model: str,
        *,
        status: str | Sequence[str] | None = None,
        name: str | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
        enabled: Callable[[Settings], bool] | None = None,
    ) -> Callable[[F], F]:
        """Register the decorated function (async or sync) for models matching the glob ``model``."""
        if timeout is not None and timeout <= 0:
            raise HandlerConfigError(f"handler timeout={timeout} must be positive")
        if max_attempts is not None and max_attempts < 1:
            raise HandlerConfigError(f"handler max_attempts={max_attempts} must be at least 1")
        statuses = (status,) if isinstance(status, str) else (tuple(status) if status is not None else None)

        def decorate(func: F) -> F:
            self.add(
                Handler(
                    name=name or f"{func.__module__}.{func.__qualname__}",
                    func=func,
                    model=model,
                    statuses=statuses,
                    timeout=timeout,
                    max_attempts=max_attempts,
                    enabled=enabled,
                    is_async=inspect.iscoroutinefunction(func),
                )
            )
            return func

        return decorate

    def add(self, handler: Handler) -> None:
        existing = self._handlers.get(handler.name)
        if existing is not None:
            raise HandlerConfigError(
                f"handler name {handler.name!r} is registered twice "
                f"({_origin(existing.func)} and {_origin(handler.func)}); give one of them another name="
            )
        self._handlers[handler.name] = handler

    def select(self, settings: Settings) -> Handlers:
        """The handlers enabled under ``settings``, their timeout and attempts defaulted from it."""
        dispatch = settings.dispatch
        return Handlers(
            dataclasses.replace(
                handler,
                timeout=handler.timeout or dispatch.handler_timeout_seconds,
                max_attempts=handler.max_attempts or dispatch.max_attempts,
            )
            for handler in self._handlers.values()
            if handler.enabled is None or handler.enabled(settings)
        )


def _origin(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{getattr(func, '__qualname__', repr(func))}"


def _import(module: str, source: str) -> None:
    try:
        importlib.import_module(module)
    except HandlerConfigError:
        raise
    except Exception as exc:
        raise HandlerConfigError(f"{source}: cannot import handler module {module!r}: {exc}") from exc


EntryPoints = Callable[..., Iterable[importlib.metadata.EntryPoint]]


def load_handlers(
    settings: Settings,
    *,
    registry: Registry | None = None,
    entry_points: EntryPoints = importlib.metadata.entry_points,
) -> Handlers:
    """Import the built-ins, the modules in WAVEHOOK_HANDLERS and the ``wavehook.handlers`` entry points."""
    _import(BUILTIN_MODULE, "built-in handlers")
    for module in settings.handler_modules:
        _import(module, "WAVEHOOK_HANDLERS")
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry_point.load()
        except HandlerConfigError:
            raise
        except Exception as exc:
            raise HandlerConfigError(
                f"entry point {entry_point.name!r} ({entry_point.value}) in group {ENTRY_POINT_GROUP}: {exc}"
            ) from exc
    return (registry or default_registry).select(settings)


def lazy_route(settings: Settings) -> Callable[[str | None, str], tuple[str, ...]]:
    """``load_handlers(settings).route``, loading the handlers only when first asked to route: a process that
    seldom ingests a final status (``wavehook submit``) does not import them, nor fail on a broken one, unless
    it has to enqueue their runs."""
    loaded: list[Handlers] = []

    def route(model: str | None, status: str) -> tuple[str, ...]:
        if not loaded:
            loaded.append(load_handlers(settings))
        return loaded[0].route(model, status)

    return route


default_registry = Registry()
on = default_registry.on
