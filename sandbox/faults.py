"""Faults the sandbox can inject, chosen per task: from the submit request's ``X-Sandbox-Faults`` header
when it has one, otherwise rolled from the run's rates.

Header syntax: comma-separated names, some with a value, e.g. ``X-Sandbox-Faults: duplicate, delay=2.5, fail``.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping

HEADER = "x-sandbox-faults"

# name -> what it does; the README lists the same table.
FAULTS: dict[str, str] = {
    "duplicate": "the delivered webhook is delivered once more: same webhook-id, body, timestamp and signature",
    "stale_processing": "after the final webhook, a `processing` webhook of the same task arrives (reordering)",
    "delay": "the final webhook is held back for SECONDS (delay=SECONDS, default: the run's --delay)",
    "drop": "the final webhook is never sent",
    "bad_signature": "a copy signed with the wrong key is sent before the genuine webhook",
    "stale_timestamp": "a copy signed with a timestamp over 300 s old is sent before the genuine webhook",
    "receiver_down": "attempts fail as if the receiver were unreachable for SECONDS (receiver_down=SECONDS)",
    "fail": "the task ends `failed` with an error message instead of `completed`",
    "cancel": "the task ends `cancelled` with an error message",
    "timeout": "the task ends `timeout` with an error message",
    "nsfw": "the output is flagged in has_nsfw_contents",
}
ALIASES = {
    "reorder": "stale_processing",
    "reordered": "stale_processing",
    "dropped": "drop",
    "failed": "fail",
    "cancelled": "cancel",
}
# `X-Sandbox-Faults: none` names no fault: the request is exempt from the run's rolled faults.
NONE = "none"
_VALUED = frozenset({"delay", "receiver_down"})
# receiver_down is a period, not a per-task coin toss: the run-wide version is POST /_sandbox/outage.
ROLLABLE = tuple(name for name in FAULTS if name != "receiver_down")


class FaultError(ValueError):
    """A fault specification that cannot be understood; the message names the part and the choices."""


@dataclasses.dataclass(frozen=True, slots=True)
class FaultPlan:
    duplicate: bool = False
    stale_processing: bool = False
    delay: float = 0.0
    drop: bool = False
    bad_signature: bool = False
    stale_timestamp: bool = False
    receiver_down: float = 0.0
    fail: bool = False
    nsfw: bool = False
    cancel: bool = False
    timeout: bool = False

    def names(self) -> list[str]:
        """The active faults, for logs and the delivery log."""
        return [name for name in FAULTS if getattr(self, name)]

    def outcome(self) -> str:
        """The status the task ends with."""
        if self.fail:
            return "failed"
        if self.cancel:
            return "cancelled"
        return "timeout" if self.timeout else "completed"


def _name(raw: str, source: str) -> str:
    name = ALIASES.get(raw, raw)
    if name not in FAULTS:
        raise FaultError(f"{source}: unknown fault {raw!r}; known faults: {', '.join(FAULTS)}")
    return name


def number(raw: str, *, name: str, source: str, low: float, high: float, what: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan  # fails the range check below, with the same message
    if not low <= value <= high:
        raise FaultError(f"{source}: {name}={raw!r} is not {what} from {low:g} to {high:g}")
    return value


def parse_plan(spec: str, *, default_delay: float, source: str = f"header {HEADER}") -> FaultPlan:
    """``"duplicate, delay=2.5"`` -> FaultPlan; raises FaultError naming what is wrong."""
    values: dict[str, object] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        raw_name, has_value, raw_value = (s.strip() for s in part.partition("="))
        if raw_name.lower() == NONE and not has_value:
            continue
        name = _name(raw_name.lower(), source)
        if name in _VALUED:
            values[name] = (
                number(raw_value, name=name, source=source, low=0, high=3600, what="a number of seconds")
                if has_value
                else default_delay
            )
        elif has_value:
            raise FaultError(f"{source}: fault {name!r} takes no value (got {part!r})")
        else:
            values[name] = True
    return FaultPlan(**values)  # type: ignore[arg-type]


def parse_rates(spec: str) -> dict[str, float]:
    """``"duplicate=0.3,drop=0.1"`` -> {name: probability}; raises FaultError naming what is wrong."""
    rates: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        raw_name, _, raw_rate = (s.strip() for s in part.partition("="))
        name = _name(raw_name.lower(), "fault rates")
        if name not in ROLLABLE:
            raise FaultError(f"fault rates: {name!r} has no rate; use POST /_sandbox/outage for a receiver outage")
        rate = number(raw_rate, name=name, source="fault rates", low=0, high=1, what="a probability")
        rates[name] = rate
    return rates


def roll(rng: random.Random, rates: Mapping[str, float], *, default_delay: float) -> FaultPlan:
    """Each fault independently, with its rate; the rolls happen in a fixed order so a seed replays a run."""
    hits = {name: rng.random() < rates.get(name, 0.0) for name in ROLLABLE}
    active: dict[str, object] = {name: hit for name, hit in hits.items() if name != "delay"}
    active["delay"] = default_delay if hits["delay"] else 0.0
    return FaultPlan(**active)  # type: ignore[arg-type]
