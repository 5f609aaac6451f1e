"""The query and path parameters of the JSON API and the dashboard: each parsed one way, each refusal naming
the parameter, the value and what it must be. An empty value means the parameter was not given."""

from __future__ import annotations

import math
from typing import Any

from receiver.errors import BadRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_ROW_ID = 2**63 - 1  # SQLite's largest integer


def whole_number(raw: str) -> int | None:
    """``raw`` as a non-negative integer SQLite can hold, or ``None``: ``isdigit()`` alone accepts ``²``, which
    ``int()`` refuses, and SQLite refuses integers past 64 bits."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        return None
    value = int(raw)
    return value if value <= MAX_ROW_ID else None


def _finite(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def integer(raw: str | None, name: str, default: int | None, *, low: int = 1, high: int = 2**62) -> int | None:
    if raw is None or raw == "":
        return default
    value = whole_number(raw)
    if value is None or not low <= value <= high:
        raise BadRequest(f"query parameter {name}={raw!r} must be an integer from {low} to {high}")
    return value


def limit(raw: str | None) -> int:
    """How many rows a listing returns: 1 to ``MAX_LIMIT``, ``DEFAULT_LIMIT`` when not given."""
    found = integer(raw, "limit", DEFAULT_LIMIT, high=MAX_LIMIT)
    assert found is not None
    return found


def since(raw: str | None) -> float | None:
    """The ``since`` parameter of the listings: Unix seconds."""
    if raw is None or raw == "":
        return None
    try:
        return _finite(raw)
    except ValueError:
        raise BadRequest(f"query parameter since={raw!r} must be Unix seconds") from None


def boolean(raw: str | None, name: str, default: bool = False) -> bool:
    if raw is None or raw == "":
        return default
    if raw.lower() not in ("true", "false", "1", "0"):
        raise BadRequest(f"query parameter {name}={raw!r} must be true or false")
    return raw.lower() in ("true", "1")


def prediction_cursor(raw: str | None) -> tuple[float, str] | None:
    """The (updated_at, id) a listing of predictions continues after."""
    if not raw:
        return None
    stamp, _, prediction_id = raw.partition(":")
    try:
        return _finite(stamp), prediction_id
    except ValueError:
        raise BadRequest(f"query parameter cursor={raw!r} is not a cursor this API returned") from None


def cursor_after(row: dict[str, Any]) -> str:
    """The cursor that continues a listing of predictions after ``row``."""
    return f"{row['updated_at']!r}:{row['id']}"


def run_id(raw: str) -> int:
    """A run id from the path."""
    value = whole_number(raw)
    if value is None or value < 1:
        raise BadRequest(f"run id {raw!r} in the path must be an integer from 1 to {MAX_ROW_ID}")
    return value
