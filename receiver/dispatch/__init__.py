"""Durable dispatch: handler runs claimed with a lease, retried with backoff, dead-lettered, replayed."""

from __future__ import annotations

from receiver.dispatch.dispatcher import Counts, Dispatcher

__all__ = ["Counts", "Dispatcher"]
