"""The one grammar of durations on the command line (``90``, ``30s``, ``10m``, ``2h``, ``1d``) and of the
moments ``--since`` takes (a duration ago, an ISO 8601 time, or Unix seconds)."""

from __future__ import annotations

import re

import click

from receiver.timestamps import parse_iso

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(raw: str, *, param_hint: str | None = None) -> float:
    """Seconds: a number, with an optional unit (s, m, h, d)."""
    match = _DURATION.match(raw.strip())
    if not match:
        raise click.BadParameter(f"{raw!r} is not a duration such as 90, 30s, 10m, 2h or 1d", param_hint=param_hint)
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_since(raw: str, now: float) -> float:
    """A duration with its unit ago (``30m``, ``2h``, ``7d``), an ISO 8601 time (UTC unless it says otherwise),
    or Unix seconds (a bare number: a moment, not a duration)."""
    text = raw.strip()
    if text[-1:] in "smhd" and _DURATION.match(text):
        return now - parse_duration(text)
    try:
        return float(text)
    except ValueError:
        pass
    moment = parse_iso(text)
    if moment is None:
        raise click.BadParameter(
            f"{raw!r} is not a duration (30m, 2h, 7d), an ISO 8601 time or Unix seconds", param_hint="--since"
        )
    return moment.timestamp()
