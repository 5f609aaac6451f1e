"""What became of runs: the counts a burst returns, and why an attempt failed."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(slots=True)
class Counts:
    """What one burst did. ``lost``: the attempt ended after another worker had taken the run over."""

    claimed: int = 0
    succeeded: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0
    unrecorded: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    error: str
    kind: str = "failed"  # failed | timeout | retry (asked for by the handler)
    traceback: str | None = None
    delay: float | None = None  # the handler's own retry delay, if it gave one
    final: bool = False  # the handler gave up: no further attempt
