"""Durable dispatch: handler runs claimed with a lease, retried with backoff, dead-lettered, replayed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from receiver.faces import lazy

if TYPE_CHECKING:
    from receiver.dispatch.dispatcher import Dispatcher
    from receiver.dispatch.outcome import Counts

__all__ = ["Counts", "Dispatcher"]
__getattr__, __dir__ = lazy(
    __name__,
    {
        "Counts": "receiver.dispatch.outcome",
        "Dispatcher": "receiver.dispatch.dispatcher",
    },
)
