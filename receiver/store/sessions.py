"""Dashboard sessions revoked by logout (the cookies themselves are signed and stateless)."""

from __future__ import annotations

from receiver.store.query import SQL, Query

_FORGET = SQL("DELETE FROM revoked_sessions WHERE forget_after < :now")
_REVOKE = SQL(
    "INSERT INTO revoked_sessions (session_id, forget_after) VALUES (:id, :forget_after) "
    "ON CONFLICT (session_id) DO NOTHING"
)
_REVOKED = SQL("SELECT 1 AS revoked FROM revoked_sessions WHERE session_id = :id")


def revoke(session_id: str, *, forget_after: float, now: float) -> Query[None]:
    yield _FORGET(now=now)
    yield _REVOKE(id=session_id, forget_after=forget_after)


def is_revoked(session_id: str) -> Query[bool]:
    return bool((yield _REVOKED(id=session_id)).rows)
