"""Durable dispatch: handler runs claimed with a lease, retried with backoff, dead-lettered, replayed."""

from __future__ import annotations

from receiver.dispatch.dispatcher import Dispatcher
from receiver.dispatch.outcome import Counts

__all__ = ["Counts", "Dispatcher"]
