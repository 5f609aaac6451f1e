"""The ledger: everything wavehook keeps, behind one seam (``Ledger``) opened one way (``open_ledger``).

``ledger`` holds the interface and its contract, ``records`` the plain values that cross it. The SQLite backend
is ``sqlite`` (the ``Ledger``), ``connection`` and ``schema`` (opening and migrating the file), ``writer`` (group
commit) and ``reader``, and one module of SQL per table group: ``events``, ``predictions``, ``runs``,
``downloads``, ``submissions``, ``meta``, ``stats``. Every SQL statement of wavehook lives in this package.
"""

from __future__ import annotations

from receiver.store.ledger import Ledger, open_ledger
from receiver.store.records import IngestResult, LedgerStats

__all__ = ["IngestResult", "Ledger", "LedgerStats", "open_ledger"]
