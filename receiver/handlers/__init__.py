"""Handlers: ``@on("model/glob-*", status="completed")`` registers a function to run once per outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING

from receiver.faces import lazy

if TYPE_CHECKING:
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
# A start loads the registry; what a handler is called with (Context, Prediction) loads with its first run.
__getattr__, __dir__ = lazy(
    __name__,
    {
        "Context": "receiver.handlers.context",
        "GiveUp": "receiver.handlers.errors",
        "Handler": "receiver.handlers.registry",
        "HandlerConfigError": "receiver.handlers.errors",
        "Handlers": "receiver.handlers.registry",
        "Prediction": "receiver.handlers.prediction",
        "Registry": "receiver.handlers.registry",
        "RetryLater": "receiver.handlers.errors",
        "load_handlers": "receiver.handlers.registry",
        "on": "receiver.handlers.registry",
    },
)
