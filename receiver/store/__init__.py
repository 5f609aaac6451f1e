"""The ledger: everything wavehook keeps, behind one seam (``Ledger``) opened one way (``open_ledger``).

``ledger`` holds the interface, its contract and every method written once; ``records`` the plain values that
cross it. The queries are written once for both backends (``query`` says how), one module per table group:
``predictions``, ``runs``, ``downloads``, ``submissions``, ``sessions``, ``meta``, ``stats``. The SQLite backend
is ``sqlite`` (its ``Ledger``), ``connection`` and ``schema`` (opening and migrating the file, running a query),
``writer`` (group commit), ``reader`` and ``events`` (its webhook write path); the PostgreSQL backend is
``postgres/``. Every SQL statement of wavehook lives in this package.
"""

from __future__ import annotations

from receiver.store.ledger import Ledger, open_ledger
from receiver.store.records import IngestResult, LedgerStats

__all__ = ["IngestResult", "Ledger", "LedgerStats", "open_ledger"]
