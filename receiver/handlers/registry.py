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
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import structlog

from receiver.handlers.errors import HandlerConfigError
from receiver.handlers.modules import import_handler_module
from receiver.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
ENTRY_POINT_GROUP = "wavehook.handlers"
BUILTIN_MODULE = "receiver.handlers.builtin"
ANY_MODEL = "*"  # the glob every model id matches


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
    after: tuple[str, ...] = ()  # handlers whose runs for the same outcome must succeed first

    def matches(self, model: str | None, status: str) -> bool:
        if self.statuses is not None and status not in self.statuses:
            return False
        return fnmatch.fnmatchcase(model or "", self.model)


class Handlers:
    """The active handlers of one process, with defaults applied. Immutable once built."""

    def __init__(self, handlers: Iterable[Handler]) -> None:
        self._by_name = {handler.name: handler for handler in handlers}
        self.names = tuple(sorted(self._by_name))
        # handler -> the handlers it runs after, for the dispatcher's claims
        self.after = {name: handler.after for name, handler in self._by_name.items() if handler.after}

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
        after: str | Sequence[str] = (),
    ) -> Callable[[F], F]:
        """Register the decorated function (async or sync) for models matching the glob ``model``.

        ``after``: handler names whose runs for the same outcome must have succeeded before this one runs.
        """
        if timeout is not None and timeout <= 0:
            raise HandlerConfigError(f"handler timeout={timeout} must be positive")
        if max_attempts is not None and max_attempts < 1:
            raise HandlerConfigError(f"handler max_attempts={max_attempts} must be at least 1")
        statuses = (status,) if isinstance(status, str) else (tuple(status) if status is not None else None)
        dependencies = (after,) if isinstance(after, str) else tuple(after)

        def decorate(func: F) -> F:
            handler_name = name or f"{func.__module__}.{getattr(func, '__qualname__', repr(func))}"
            _check_signature(handler_name, func)
            self.add(
                Handler(
                    name=handler_name,
                    func=func,
                    model=model,
                    statuses=statuses,
                    timeout=timeout,
                    max_attempts=max_attempts,
                    enabled=enabled,
                    is_async=inspect.iscoroutinefunction(func),
                    after=dependencies,
                )
            )
            return func

        return decorate

    def registered_by(self, module: str) -> list[str]:
        """Names of the handlers whose function lives in ``module`` or one of its submodules."""
        return [
            name
            for name, handler in self._handlers.items()
            if handler.func.__module__ == module or handler.func.__module__.startswith(module + ".")
        ]

    def add(self, handler: Handler) -> None:
        existing = self._handlers.get(handler.name)
        if existing is not None:
            raise HandlerConfigError(
                f"handler name {handler.name!r} is registered twice "
                f"({_origin(existing.func)} and {_origin(handler.func)}); give one of them another name="
            )
        self._handlers[handler.name] = handler

    def select(self, settings: Settings) -> Handlers:
        """The handlers enabled under ``settings``, their timeout and attempts defaulted from it.

        A status no handler can ever see (not one of the terminal statuses) stops the start.
        """
        for handler in self._handlers.values():
            _check_statuses(handler, settings.terminal_statuses)
        _check_order(self._handlers)
        dispatch = settings.dispatch
        enabled = [h for h in self._handlers.values() if h.enabled is None or h.enabled(settings)]
        on = {handler.name for handler in enabled}
        return Handlers(
            dataclasses.replace(
                handler,
                timeout=handler.timeout or dispatch.handler_timeout_seconds,
                max_attempts=handler.max_attempts or dispatch.max_attempts,
                # A dependency switched off by its settings holds nothing back (ctx.downloads stays empty
                # without download_outputs, say).
                after=tuple(name for name in handler.after if name in on),
            )
            for handler in enabled
        )


def _origin(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{getattr(func, '__qualname__', repr(func))}"


def _check_signature(name: str, func: Callable[..., Any]) -> None:
    """A handler is called as ``func(prediction, ctx)``: refuse, at registration, one that cannot be."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # some builtins and C callables have none to check
        return
    try:
        signature.bind(None, None)
    except TypeError:
        raise HandlerConfigError(
            f"handler {name!r} ({_origin(func)}{signature}) must take two arguments, (prediction, ctx)"
        ) from None


def _check_order(handlers: dict[str, Handler]) -> None:
    """Every ``after=`` name is a registered handler, and no handler waits, however indirectly, for itself."""
    for handler in handlers.values():
        for name in handler.after:
            if name not in handlers:
                close = _close_matches(name, list(handlers))
                hint = f"; did you mean {close[0]!r}?" if close else f"; registered: {', '.join(sorted(handlers))}"
                raise HandlerConfigError(f"handler {handler.name!r} runs after={name!r}, which is no handler{hint}")
    done: set[str] = set()
    for start in sorted(handlers):
        path: list[str] = []
        _visit(start, handlers, path, done)


def _visit(name: str, handlers: dict[str, Handler], path: list[str], done: set[str]) -> None:
    if name in done:
        return
    if name in path:
        cycle = [*path[path.index(name) :], name]
        raise HandlerConfigError(f"handlers wait for each other in a cycle: {' -> '.join(cycle)} (after=)")
    path.append(name)
    for dependency in handlers[name].after:
        _visit(dependency, handlers, path, done)
    path.pop()
    done.add(name)


def _check_statuses(handler: Handler, terminal: tuple[str, ...]) -> None:
    for status in handler.statuses or ():
        if status not in terminal:
            close = _close_matches(status, terminal)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise HandlerConfigError(
                f"handler {handler.name!r}: status={status!r} is not a final status, so it would never run; "
                f"{hint}handlers run on {', '.join(terminal)} (WAVEHOOK_TERMINAL_STATUSES)"
            )


def _close_matches(word: str, possibilities: Sequence[str]) -> list[str]:
    import difflib  # only a mistake's message needs it: not loaded by a start without one

    return difflib.get_close_matches(word, possibilities, n=1)


def _import(module: str, source: str) -> None:
    try:
        importlib.import_module(module)
    except HandlerConfigError:
        raise
    except Exception as exc:
        raise HandlerConfigError(f"{source}: cannot import handler module {module!r}: {exc}") from exc


def unmatched_globs(handlers: Iterable[Handler], known_models: Collection[str]) -> list[Handler]:
    """Handlers whose model glob matches none of ``known_models`` (a typo, or a model outside the catalog)."""
    return [h for h in handlers if not any(fnmatch.fnmatchcase(model, h.model) for model in known_models)]


def _warn_unmatched(handlers: Iterable[Handler], known_models: Collection[str]) -> None:
    for handler in unmatched_globs(handlers, known_models):
        # Compare the glob's literal start with the ids cut to its length: "seedanse-*" is near "seedance-".
        literal = re.split(r"[*?\[]", handler.model, maxsplit=1)[0]
        starts = {model[: len(literal)] for model in known_models}
        close = _close_matches(literal, sorted(starts)) if literal else []
        structlog.get_logger().warning(
            "handler_glob_matches_no_catalogued_model",
            handler=handler.name,
            model=handler.model,
            did_you_mean=close[0] + handler.model[len(literal) :] if close else None,
            detail="it runs only for models matching the glob; fine for a model outside the catalog",
        )


EntryPoints = Callable[..., Iterable[importlib.metadata.EntryPoint]]


def load_handlers(
    settings: Settings,
    *,
    registry: Registry | None = None,
    entry_points: EntryPoints = importlib.metadata.entry_points,
    known_models: Collection[str] | Callable[[], Collection[str]] = (),
) -> Handlers:
    """Import the built-ins, the modules in WAVEHOOK_HANDLERS and the ``wavehook.handlers`` entry points.

    Each WAVEHOOK_HANDLERS entry (a module name, or a ``.py`` file's path) must register at least one handler.
    With ``known_models`` (the catalog, or a function returning it: called only when a handler's glob is more
    than ``*``, which matches every model), a model glob matching none of them is logged as a warning.
    """
    chosen = registry or default_registry
    _import(BUILTIN_MODULE, "built-in handlers")
    for spec in settings.handler_modules:
        module = import_handler_module(spec, "WAVEHOOK_HANDLERS")
        if not chosen.registered_by(module):
            raise HandlerConfigError(
                f"WAVEHOOK_HANDLERS: module {spec!r} registers no handler; decorate its functions with "
                "@on('model/glob-*') from receiver.handlers"
            )
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry_point.load()
        except HandlerConfigError:
            raise
        except Exception as exc:
            raise HandlerConfigError(
                f"entry point {entry_point.name!r} ({entry_point.value}) in group {ENTRY_POINT_GROUP}: {exc}"
            ) from exc
    handlers = chosen.select(settings)
    narrowed = [handler for handler in handlers if handler.model != ANY_MODEL]
    if narrowed and known_models:
        _warn_unmatched(narrowed, known_models() if callable(known_models) else known_models)
    return handlers


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
