"""Where the ledger is, said so that nobody is surprised: its absolute path (or its URL, password masked), and
whether a command is about to create a new one where the user expects the one ``wavehook serve`` writes to.

The default ``WAVEHOOK_DB`` is ``wavehook.db``, relative to the directory a command runs in: a ``submit`` from
another directory would otherwise make a second ledger silently, and the receiver would then refuse that job's
webhook (``token_mismatch``: the job's token was made with the other ledger's secret).
"""

from __future__ import annotations

from pathlib import Path

from receiver.store.ledger import is_postgres_url
from receiver.store.postgres.url import masked


def describe(db: str) -> str:
    """The ledger's absolute path, or its URL with any password masked."""
    if is_postgres_url(db):
        return masked(db.strip())
    return str(Path(db).expanduser().absolute())


def is_new(db: str) -> bool:
    """True when opening ``db`` would create a ledger (a SQLite file that does not exist yet)."""
    return not is_postgres_url(db) and not Path(db).expanduser().exists()


def missing_message(db: str, command: str) -> str:
    """What to tell a user whose command would create a new ledger, and how to point at the right one."""
    where = describe(db)
    relative = "" if Path(db).expanduser().is_absolute() else f" (WAVEHOOK_DB={db!r}, relative to {Path.cwd()})"
    return (
        f"no ledger at {where}{relative}: `wavehook {command}` would start a new, empty one. To use the ledger "
        "`wavehook serve` writes to, run from its directory or set WAVEHOOK_DB to its absolute path (serve logs "
        "it at start, `ledger=` in `receiver_started`)"
    )
