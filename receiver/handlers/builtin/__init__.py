"""The built-in handlers; importing this module registers them (each one is enabled by its settings)."""

from __future__ import annotations

from receiver.handlers.builtin import download, forward, log

__all__ = ["download", "forward", "log"]
