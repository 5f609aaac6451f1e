"""The ``meta`` table: the ledger's own key-value settings (the correlation secret) and the readiness probe."""

from __future__ import annotations

from receiver.store.query import SQL, Query

_GET = SQL("SELECT value FROM meta WHERE key = :key")
_ADD = SQL("INSERT INTO meta (key, value) VALUES (:key, :value) ON CONFLICT (key) DO NOTHING")
_PROBE = SQL(
    "INSERT INTO meta (key, value) VALUES ('ready_probe', :value) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


def get_meta(key: str) -> Query[str | None]:
    row = (yield _GET(key=key)).first()
    return None if row is None else str(row["value"])


def set_meta_if_absent(key: str, value: str) -> Query[str]:
    """Keep the first value any process wrote under ``key``; return the one stored."""
    yield _ADD(key=key, value=value)
    stored = yield from get_meta(key)
    assert stored is not None
    return stored


def probe_write(now: float) -> Query[None]:
    """A real write, for readiness: proves the storage (the file, the disk, its lock; or the server, not read-only)
    accepts one."""
    yield _PROBE(value=repr(now))
