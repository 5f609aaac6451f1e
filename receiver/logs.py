"""structlog set-up, called once by the entry point: JSON lines when not on a terminal, console when on one.

The standard library's loggers (uvicorn's start-up, shutdown and error lines) are rendered by the same
processors, so a process's whole output is one format: every line JSON when it goes to a file or a pipe.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

# Keys that must never reach a log line, whatever a caller binds by mistake.
_SECRET_KEYS = frozenset(
    {"secret", "secrets", "webhook_secret", "api_key", "authorization", "token", "signature", "password"}
)


# A correlation token in a URL, plain (``token=…``) or URL-encoded inside another URL (``token%3D…``): the value
# runs to the next parameter, space or quote.
_TOKEN_IN_URL = re.compile(r"(?i)(token(?:=|%3D))(?:(?!%26)[^&\s\"'])+")


def redact_urls(text: str) -> str:
    """``text`` with the value of every ``token=`` URL parameter masked."""
    return _TOKEN_IN_URL.sub(r"\1[redacted]", text) if "oken" in text else text


def _drop_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in _SECRET_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    for key, value in event_dict.items():
        if isinstance(value, str) and "oken" in value:
            event_dict[key] = redact_urls(value)
    return event_dict


class _RedactTokens(logging.Filter):
    """Standard-library lines (httpx's request line, uvicorn's access line) are formatted here, tokens masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "oken" in message:
            record.msg, record.args = redact_urls(message), ()
        return True


class _Pid:
    """Several uvicorn workers write to one stream: the pid says which process a line came from.

    Read once, and again in a forked child: ``os.getpid()`` is a system call, and the webhook path writes a
    line per delivery."""

    value = os.getpid()

    @classmethod
    def refresh(cls) -> None:
        cls.value = os.getpid()


os.register_at_fork(after_in_child=_Pid.refresh)


def _add_pid(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict["pid"] = _Pid.value
    return event_dict


class _Timestamp:
    """ISO 8601 in UTC to the microsecond, as ``TimeStamper(fmt="iso", utc=True)`` writes it, at a fraction of
    its cost (one line per delivery makes per-line work count): the text up to the second is made once a second.
    """

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")  # one tuple, so that threads never see half an update

    def __call__(self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        now = time.time()
        second, text = self._second
        if int(now) != second:
            second = int(now)
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        event_dict["timestamp"] = f"{text}.{int((now - second) * 1_000_000):06d}Z"
        return event_dict


def _json(event_dict: MutableMapping[str, Any], **dumps_kw: Any) -> str:
    """One JSON line through orjson (a tenth of ``json.dumps``' time); what orjson refuses (an integer beyond
    64 bits, a non-string key, a lone surrogate) falls back to ``json.dumps``."""
    try:
        return orjson.dumps(event_dict, default=dumps_kw["default"]).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(event_dict, **dumps_kw)


def configure(*, log_format: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    use_console = log_format == "console" or (log_format == "auto" and stream.isatty())
    renderer: Any = (
        # plain_traceback: the rich/better-exceptions formatters print local variables, headers among them.
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        if use_console
        else structlog.processors.JSONRenderer(serializer=_json)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _Timestamp(),
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
    handler.addFilter(_RedactTokens())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, exceptions, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric_level)
