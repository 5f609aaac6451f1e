"""wavehook's receiver: verified, durable, exactly-once ingestion of WaveSpeedAI webhooks.

Its names load on first use, so importing a part of the receiver (the settings, the store, the signature
check) never imports the web application and what it needs (Starlette's app, Jinja, prometheus-client)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from receiver.faces import lazy

if TYPE_CHECKING:
    from receiver.errors import WavehookError
    from receiver.http.app import create_app
    from receiver.settings import Settings
    from receiver.signature import Verifier
    from receiver.store.ledger import Ledger, open_ledger

__all__ = ["Ledger", "Settings", "Verifier", "WavehookError", "create_app", "open_ledger"]
__getattr__, __dir__ = lazy(
    __name__,
    {
        "Ledger": "receiver.store.ledger",
        "Settings": "receiver.settings",
        "Verifier": "receiver.signature",
        "WavehookError": "receiver.errors",
        "create_app": "receiver.http.app",
        "open_ledger": "receiver.store.ledger",
    },
)
