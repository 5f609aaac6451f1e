"""structlog set-up, called once by the entry point: JSON lines when not on a terminal, console when on one.

The standard library's loggers (uvicorn's start-up, shutdown and error lines) are rendered by the same
processors, so a process's whole output is one format: every line JSON when it goes to a file or a pipe.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

# Keys that must never reach a log line, whatever a caller binds by mistake.
_SECRET_KEYS = frozenset(
    {"secret", "secrets", "webhook_secret", "api_key", "authorization", "token", "signature", "password"}
)


def _drop_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in _SECRET_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


def _add_pid(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # Several uvicorn workers write to one stream: the pid says which process a line came from.
    event_dict["pid"] = os.getpid()
    return event_dict


def configure(*, log_format: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    use_console = log_format == "console" or (log_format == "auto" and stream.isatty())
    renderer: Any = (
        # plain_traceback: the rich/better-exceptions formatters print local variables, headers among them.
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        if use_console
        else structlog.processors.JSONRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_pid,
        _drop_secrets,
    ]
    exceptions = structlog.dev.set_exc_info if use_console else structlog.processors.format_exc_info
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        # One write per line (print() makes two), so lines from several worker processes never interleave.
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, exceptions, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric_level)
