"""Times as wavehook reads and writes them: Unix seconds inside, UTC ISO 8601 (with ``Z``) outside."""

from __future__ import annotations

import datetime


def parse_iso(text: str | None) -> datetime.datetime | None:
    """An ISO 8601 time (``Z`` for UTC accepted; a time without an offset is UTC), or None if it is not one."""
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def from_unix(stamp: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC)


def iso_utc(stamp: float, *, timespec: str = "auto") -> str:
    """``2026-11-21T10:00:00Z`` (to the ``timespec`` of ``datetime.isoformat``)."""
    return from_unix(stamp).isoformat(timespec=timespec).replace("+00:00", "Z")


def utc_text(stamp: float | None) -> str:
    """``2026-11-21 10:00:00`` for tables, ``-`` for no time."""
    return "-" if stamp is None else from_unix(stamp).strftime("%Y-%m-%d %H:%M:%S")
