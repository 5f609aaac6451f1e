"""``wavehook doctor``: a deployment checked end to end, each finding with what to fix.

The checks, in order: the signing secret (set, well formed); the clock against the provider's ``Date`` header;
``WAVEHOOK_PUBLIC_URL`` (https, reachable, no redirect, and a signed delivery sent to it lands in this ledger);
the ledger (writable) and, on PostgreSQL, the server's room for one more process's connections; the handler
modules (they load). Each gives ``ok``, ``warn`` (worth fixing, not fatal) or ``fail``; the command exits 0 only
when none failed.

The self-delivery is signed by the sandbox's own few lines, not the receiver's verifier, so the round trip
proves the two agree; it records one prediction ``wavehook-doctor-…`` (status ``processing``, model
``wavehook/doctor``), which never runs a handler.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import secrets
import time
from collections.abc import Callable, Collection
from typing import Literal
from urllib.parse import urlsplit

import httpx

from receiver.errors import ConfigError, StorageUnavailable
from receiver.settings import Settings

State = Literal["ok", "warn", "fail"]
DOCTOR_MODEL = "wavehook/doctor"


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    check: str
    state: State
    message: str

    def line(self) -> str:
        return f"{self.state.upper():<4}  {self.check}: {self.message}"


def check_secret(settings: Settings) -> Finding:
    from receiver.signature import Verifier

    try:
        Verifier(settings.require_secrets())
    except ConfigError as exc:
        return Finding("secret", "fail", str(exc).splitlines()[0] + " (`wavehook secret` prints your account's)")
    count = len(settings.webhook_secrets)
    odd = [n for n, s in enumerate(settings.webhook_secrets, 1) if not s.reveal().startswith("whsec_")]
    if odd:
        return Finding(
            "secret",
            "warn",
            f"secret #{odd[0]} lacks the whsec_ prefix the provider's secrets have; is it the right one?",
        )
    return Finding(
        "secret", "ok", f"{count} secret(s) set, each whsec_-prefixed" + (" (rotating)" if count > 1 else "")
    )


async def check_clock(settings: Settings, http: httpx.AsyncClient, clock: Callable[[], float]) -> Finding:
    """Compare this machine's clock with the provider's ``Date`` header (whatever the status of the answer)."""
    url = settings.base_url.rstrip("/") + "/api/v3/webhook/secret"
    try:
        started = clock()
        response = await http.get(url, follow_redirects=False)
        ended = clock()
    except httpx.HTTPError as exc:
        return Finding("clock", "fail", f"cannot reach the provider at {settings.base_url} ({type(exc).__name__})")
    date = response.headers.get("date")
    if not date:
        return Finding("clock", "warn", f"the provider at {settings.base_url} sent no Date header to compare with")
    theirs = email.utils.parsedate_to_datetime(date).timestamp()
    skew = (started + ended) / 2 - theirs  # positive: this clock is ahead
    # The Date header has whole seconds: a skew under 2 s is within its precision.
    tolerance = settings.tolerance_seconds
    side = "ahead of" if skew > 0 else "behind"
    said = f"this clock is {abs(skew):.0f} s {side} the provider's (tolerance {tolerance} s)"
    if abs(skew) > tolerance:
        return Finding("clock", "fail", said + ": every delivery would be refused as stale; sync the clock (NTP)")
    if abs(skew) > tolerance / 2:
        return Finding("clock", "warn", said + ": close to the limit; sync the clock (NTP)")
    return Finding("clock", "ok", said)


async def check_public_url(settings: Settings, http: httpx.AsyncClient) -> list[Finding]:
    """https, reachable, answered without a redirect (a 301 silently loses deliveries: they are POSTs)."""
    url = settings.public_url
    if not url:
        return [Finding("public URL", "fail", "WAVEHOOK_PUBLIC_URL is not set: the provider cannot reach you")]
    findings = []
    scheme = urlsplit(url).scheme
    if scheme != "https":
        findings.append(Finding("public URL", "warn", f"{url} is not https: deliveries cross the internet in clear"))
    try:
        response = await http.get(url.rstrip("/") + "/healthz", follow_redirects=False)
    except httpx.HTTPError as exc:
        findings.append(Finding("public URL", "fail", f"{url}/healthz cannot be reached ({type(exc).__name__})"))
        return findings
    if response.is_redirect:
        where = response.headers.get("location", "?")
        findings.append(
            Finding(
                "public URL",
                "fail",
                f"{url}/healthz answers {response.status_code} to {where}: the provider does not follow redirects "
                "with its POST, so deliveries would be lost; set WAVEHOOK_PUBLIC_URL to the final address",
            )
        )
    elif response.status_code != 200:
        findings.append(Finding("public URL", "fail", f"{url}/healthz answers {response.status_code}, not 200"))
    else:
        findings.append(Finding("public URL", "ok", f"{url} answers /healthz without a redirect"))
    return findings


async def check_round_trip(settings: Settings, http: httpx.AsyncClient, clock: Callable[[], float]) -> Finding:
    """A signed delivery sent to the public URL is accepted and lands in this ledger."""
    from receiver.store.ledger import open_ledger
    from sandbox.signing import headers

    if not settings.public_url or not settings.webhook_secrets:
        return Finding("round trip", "fail", "needs WAVEHOOK_PUBLIC_URL and WAVESPEED_WEBHOOK_SECRET")
    prediction_id = f"wavehook-doctor-{secrets.token_hex(6)}"
    body = json.dumps({"id": prediction_id, "model": DOCTOR_MODEL, "status": "processing"}).encode()
    url = settings.public_url.rstrip("/") + "/webhooks/wavespeed"
    signed = headers(settings.webhook_secrets[0].reveal(), prediction_id, int(clock()), body)
    try:
        response = await http.post(url, content=body, headers=signed, follow_redirects=False)
    except httpx.HTTPError as exc:
        return Finding("round trip", "fail", f"POST {url} failed ({type(exc).__name__})")
    if response.status_code != 200:
        reason = _reason(response)
        hint = {
            "signature_mismatch": "the receiver there has another WAVESPEED_WEBHOOK_SECRET than this shell",
            "stale_timestamp": "the receiver's clock differs from this one",
            "future_timestamp": "the receiver's clock differs from this one",
        }.get(reason, "see the receiver's log line webhook_rejected")
        return Finding(
            "round trip", "fail", f"a signed delivery to {url} was answered {response.status_code} {reason}: {hint}"
        )
    async with await open_ledger(settings) as ledger:
        found = await ledger.prediction_state(prediction_id)
    if found is None:
        return Finding(
            "round trip",
            "fail",
            f"{url} accepted the delivery, but it is not in this ledger ({settings.db}): the receiver there writes "
            "to another one; give both the same WAVEHOOK_DB",
        )
    return Finding("round trip", "ok", f"a signed delivery to {url} was accepted and is in this ledger")


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason", ""))
    except ValueError:
        return ""


async def check_ledger(settings: Settings, clock: Callable[[], float]) -> Finding:
    from receiver.store.ledger import open_ledger
    from receiver.store.location import describe, is_new, missing_message

    if is_new(settings.db):
        return Finding("ledger", "fail", missing_message(settings.db, "doctor"))
    try:
        async with await open_ledger(settings) as ledger:
            await ledger.probe_write(now=clock())
    except (StorageUnavailable, OSError, ConfigError) as exc:
        return unwritable(settings, exc)
    return Finding("ledger", "ok", f"{describe(settings.db)} is writable")


def unwritable(settings: Settings, exc: Exception) -> Finding:
    from receiver.store.location import describe

    return Finding("ledger", "fail", f"{describe(settings.db)} is not writable: {exc}")


async def check_connections(settings: Settings) -> Finding | None:
    """On PostgreSQL: whether the server has room for one more wavehook process's connections (None on SQLite).

    Raises ``StorageUnavailable`` when the server cannot be reached or fails: the ledger check would wait on it as
    long again (a host that drops packets costs the whole connect timeout), so that is the ledger's finding."""
    from receiver.store.ledger import is_postgres_url

    if not is_postgres_url(settings.db):
        return None
    import psycopg

    from receiver.store.postgres.connection import connection_room, is_unavailable, unavailable

    try:
        room = await asyncio.to_thread(connection_room, settings.db, timeout_ms=settings.busy_timeout_ms)
    except (psycopg.Error, OSError) as exc:
        if is_unavailable(exc):
            raise unavailable(exc, settings.db) from None
        return None
    per_process = settings.db_pool_size + 1
    usable = room.max_connections - room.reserved
    said = (
        f"PostgreSQL {room.version}: {room.in_use} of {usable} connections in use "
        f"(max_connections {room.max_connections}, {room.reserved} reserved); each wavehook process opens up to "
        f"{per_process} (WAVEHOOK_DB_POOL_SIZE {settings.db_pool_size}, and one to LISTEN)"
    )
    if room.free < per_process:
        return Finding(
            "connections",
            "warn",
            f"{said}, and {room.free} are free: one more process may be refused connections. Raise the server's "
            "max_connections, or lower WAVEHOOK_DB_POOL_SIZE",
        )
    return Finding("connections", "ok", f"{said}: room for {room.free // per_process} more such processes")


def check_handlers(settings: Settings, known_models: Collection[str]) -> Finding:
    from receiver.handlers.registry import load_handlers

    try:
        handlers = load_handlers(settings, known_models=known_models)
    except ConfigError as exc:
        return Finding("handlers", "fail", str(exc))
    return Finding("handlers", "ok", f"{len(handlers)} loaded: {', '.join(handlers.names)}")


async def diagnose(
    settings: Settings,
    *,
    known_models: Collection[str] = (),
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> list[Finding]:
    """Every check, in order; the round trip only when the URL itself passed (else it would only repeat it)."""
    findings = [check_secret(settings)]
    async with httpx.AsyncClient(transport=transport, timeout=10.0) as http:
        findings.append(await check_clock(settings, http, clock))
        public = await check_public_url(settings, http)
        findings += public
        try:
            room = await check_connections(settings)
        except StorageUnavailable as exc:
            findings.append(unwritable(settings, exc))
        else:
            findings.append(await check_ledger(settings, clock))
            if room is not None:
                findings.append(room)
        if not any(f.state == "fail" for f in public) and findings[0].state != "fail":
            findings.append(await check_round_trip(settings, http, clock))
    findings.append(check_handlers(settings, known_models))
    return findings
