"""Importing the user's handler modules: by module name (found in the current directory too, as uvicorn finds
its app) or by file path; a failure says what was searched and where it broke."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

from receiver.handlers.errors import HandlerConfigError

_PATH_SHOWN = 6  # sys.path entries named in a "not found" message; the rest are counted


def is_file_path(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or "/" in spec


def import_handler_module(spec: str, source: str) -> str:
    """Import ``spec`` (a module name or a ``.py`` file path); return the module's name."""
    if is_file_path(spec):
        return _import_file(Path(spec), source).__name__
    _put_on_path(Path.cwd())
    try:
        importlib.import_module(spec)
    except HandlerConfigError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name is not None and (spec == exc.name or spec.startswith(exc.name + ".")):
            raise HandlerConfigError(
                f"{source}: no handler module {spec!r} on sys.path (searched {_searched()}); give its directory in "
                f"PYTHONPATH, run from that directory, or give the file's path (WAVEHOOK_HANDLERS=./{spec}.py)"
            ) from None
        raise HandlerConfigError(f"{source}: handler module {spec!r} failed to import: {_where(exc)}") from exc
    except Exception as exc:
        raise HandlerConfigError(f"{source}: handler module {spec!r} failed to import: {_where(exc)}") from exc
    return spec


def _import_file(path: Path, source: str) -> ModuleType:
    resolved = path.expanduser().resolve()
    if not resolved.is_file():
        raise HandlerConfigError(f"{source}: handler file {str(path)!r} does not exist (looked at {resolved})")
    name = resolved.stem
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) == str(resolved):
        return loaded
    if loaded is not None:
        raise HandlerConfigError(
            f"{source}: handler file {resolved} would be module {name!r}, which is already {loaded!r}; rename the file"
        )
    # Its directory goes on sys.path, so the file imports its neighbours as it would when run from there.
    _put_on_path(resolved.parent)
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise HandlerConfigError(f"{source}: {resolved} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except HandlerConfigError:
        del sys.modules[name]
        raise
    except Exception as exc:
        del sys.modules[name]
        raise HandlerConfigError(f"{source}: handler file {resolved} failed to import: {_where(exc)}") from exc
    return module


def _put_on_path(directory: Path) -> None:
    text = str(directory)
    if text not in sys.path and not ("" in sys.path and directory == Path.cwd()):
        sys.path.insert(0, text)


def _searched() -> str:
    entries = [entry or "." for entry in sys.path]
    shown = ", ".join(entries[:_PATH_SHOWN])
    return shown + (f" and {len(entries) - _PATH_SHOWN} more" if len(entries) > _PATH_SHOWN else "")


def _where(exc: BaseException) -> str:
    """The exception and the line of the user's code that raised it (the last frame outside the import system)."""
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if "importlib" not in frame.filename]
    place = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{place}"
