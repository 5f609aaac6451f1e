"""The ledger: everything wavehook keeps, behind one seam (``Ledger``) opened one way (``open_ledger``).

SQLite through sqlite-utils is the embedded backend; every SQL statement of wavehook lives in this package.
"""

from __future__ import annotations

from receiver.store.ledger import Ledger, open_ledger
from receiver.store.records import IngestResult, LedgerStats

__all__ = ["IngestResult", "Ledger", "LedgerStats", "open_ledger"]
