"""The query and path parameters of the JSON API and the dashboard: each parsed one way, each refusal naming
the parameter, the value and what it must be. An empty value means the parameter was not given."""

from __future__ import annotations

from typing import Any

from receiver.errors import BadRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def integer(raw: str | None, name: str, default: int | None, *, low: int = 1, high: int = 2**62) -> int | None:
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise BadRequest(f"query parameter {name}={raw!r} must be an integer from {low} to {high}")
    return int(raw)


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
        return float(raw)
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
        return float(stamp), prediction_id
    except ValueError:
        raise BadRequest(f"query parameter cursor={raw!r} is not a cursor this API returned") from None


def cursor_after(row: dict[str, Any]) -> str:
    """The cursor that continues a listing of predictions after ``row``."""
    return f"{row['updated_at']!r}:{row['id']}"


def run_id(raw: str) -> int:
    """A run id from the path."""
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise BadRequest(f"run id {raw!r} in the path must be a positive integer")
    return int(raw)
