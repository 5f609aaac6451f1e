"""Handlers: ``@on("model/glob-*", status="completed")`` registers a function to run once per outcome."""

from __future__ import annotations

from receiver.handlers.context import Context
from receiver.handlers.errors import GiveUp, HandlerConfigError, RetryLater
from receiver.handlers.prediction import Prediction
from receiver.handlers.registry import Handler, Handlers, Registry, load_handlers, on

__all__ = [
    "Context",
    "GiveUp",
    "Handler",
    "HandlerConfigError",
    "Handlers",
    "Prediction",
    "Registry",
    "RetryLater",
    "load_handlers",
    "on",
]
