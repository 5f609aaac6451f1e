"""Retry delays: exponential in the attempt number, with jitter so failed runs do not retry in lockstep."""

from __future__ import annotations

from collections.abc import Callable


def backoff_delay(attempt: int, *, base: float, cap: float, random: Callable[[], float]) -> float:
    """Seconds to wait after failed ``attempt`` (1-based).

    Equal jitter: half of the exponential step is fixed and half is random, so delays spread out yet still
    grow from one attempt to the next (attempt n waits between base·2ⁿ⁻² and base·2ⁿ⁻¹, capped).
    """
    step = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 62))
    return step / 2 + random() * step / 2
