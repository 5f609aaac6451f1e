"""The prediction state machine: ``created → processing → completed | failed | …terminal``, never backwards."""

from __future__ import annotations

# Statuses after which a prediction never changes again, unless WAVEHOOK_TERMINAL_STATUSES says otherwise: the
# provider documents completed and failed, its SDK adds cancelled and timeout.
TERMINAL_STATUSES = ("completed", "failed", "cancelled", "timeout")
CREATED = 0
RUNNING = 1
TERMINAL = 2
_EARLY = {"created": CREATED, "processing": RUNNING}


def rank(status: str | None, terminal_statuses: tuple[str, ...]) -> int:
    """Position of a status in the state machine.

    A status the provider has not documented ranks with ``processing``: it is stored and may replace an
    earlier non-final status, but it never ends a prediction nor overrides a final one.
    """
    if status is None:
        return -1
    if status in terminal_statuses:
        return TERMINAL
    return _EARLY.get(status, RUNNING)
