"""What handlers raise on purpose, and what loading them can go wrong with.

Exception
├── RetryLater                  raised by a handler: try this run again later (counts as an attempt)
├── GiveUp                      raised by a handler: no retry can fix this; the run is dead at once
└── ConfigError (receiver)
    └── HandlerConfigError      a handler module cannot be imported, or two handlers share a name
"""

from __future__ import annotations

from receiver.errors import ConfigError


class RetryLater(Exception):
    """Raise from a handler to have the run tried again after ``delay`` seconds (default: the backoff)."""

    def __init__(self, reason: str = "the handler asked to be retried later", *, delay: float | None = None) -> None:
        super().__init__(reason)
        if delay is not None and delay < 0:
            raise ValueError(f"RetryLater delay={delay} must not be negative")
        self.reason = reason
        self.delay = delay


class GiveUp(Exception):
    """Raise from a handler when no later attempt could succeed (a refused configuration, a file that is gone):
    the run ends dead at once, with this message, instead of using up its remaining attempts."""


class HandlerConfigError(ConfigError):
    """A handler could not be loaded or registered; the message names the module or the name."""
