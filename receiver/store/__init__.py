"""The ledger: SQLite through sqlite-utils. Every SQL statement of wavehook lives in this package."""

from __future__ import annotations

from receiver.store.connection import connect, open_database
from receiver.store.schema import migrations

__all__ = ["connect", "migrations", "open_database"]
