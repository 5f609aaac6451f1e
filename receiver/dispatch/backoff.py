"""Retry delays: exponential in the attempt number, with jitter so failed runs do not retry in lockstep."""

from __future__ import annotations

from collections.abc import Callable


def backoff_delay(attempt: int, *, base: float, cap: float, random: Callable[[], float]) -> float:
    """Seconds to wait after failed ``attempt`` (1-based).

    Two thirds of the exponential step are fixed and one third is random: delays spread out, yet each is
    longer than the one before (attempt n waits between ⅔·base·2ⁿ⁻¹ and base·2ⁿ⁻¹, until the cap).
    """
    step = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 62))
    return step * (2 + random()) / 3
