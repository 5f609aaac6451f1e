"""Who may see the dashboard, the JSON API and ``/metrics``, and which requests may change anything.

With ``WAVEHOOK_ADMIN_TOKEN`` set, a request is let in by ``Authorization: Bearer <token>`` or by the session
cookie the login form sets. Without it, only loopback clients that name a loopback host are served (the Host
check stops DNS rebinding). The webhook endpoint, the health checks and the static files are never behind it.

Unsafe methods (POST, …) made with a cookie or as a loopback client must also pass a same-origin check and carry
the session's CSRF token in ``X-CSRF-Token``: a cross-site page can make the browser send the cookie, but can
neither read the token nor set the header. A bearer header is never sent by a browser on its own, so requests
authenticated by it need no CSRF token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable
from typing import Literal
from urllib.parse import quote, urlsplit

import structlog
from starlette.requests import HTTPConnection
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from receiver.correlation import WEBHOOK_PATH
from receiver.errors import Forbidden, HTTPError, TooManyAttempts, Unauthorized
from receiver.http.responses import error_response
from receiver.http.state import base_path, receiver_state, route_path
from receiver.http.throttle import Throttle
from receiver.settings import TOKEN_HELP, Secret

logger = structlog.get_logger()

PUBLIC_PATHS = frozenset({WEBHOOK_PATH, "/healthz", "/readyz", "/login"})
PUBLIC_PREFIXES = ("/static/",)
# Paths whose refusal is a redirect to the login form rather than a JSON error.
API_PREFIXES = ("/api/", "/metrics", "/media/", "/fragments/", "/openapi.json")
COOKIE_NAME = "wavehook_session"
CSRF_HEADER = "x-csrf-token"
SESSION_SECONDS = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost."})

Kind = Literal["bearer", "cookie", "loopback"]


@dataclasses.dataclass(frozen=True, slots=True)
class Access:
    """How a request got in; ``csrf_token`` is what its unsafe requests must echo (none for bearer)."""

    kind: Kind
    csrf_token: str | None = None
    login_required: bool = False
    session_id: str | None = None  # the cookie's session, which logout revokes


class Sessions:
    """Signed, stateless session cookies: every worker process (and a restart) accepts them.

    The key is derived from the ledger's session secret and the admin token, so changing the token ends every
    session. The cookie holds a random session id, its expiry and an HMAC, never the token.
    """

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock

    @classmethod
    def for_ledger(cls, ledger_secret: str, admin_token: Secret | None, *, clock: Callable[[], float]) -> Sessions:
        token = admin_token.reveal() if admin_token else ""
        key = hmac.new(ledger_secret.encode(), b"wavehook-dashboard-session\0" + token.encode(), hashlib.sha256)
        return cls(key.digest(), clock=clock)

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        session_id = secrets.token_urlsafe(18)
        payload = f"{session_id}.{int(self._clock()) + SESSION_SECONDS}"
        return f"{payload}.{self._sign(payload)}"

    def verify(self, cookie: str | None) -> str | None:
        """The session id of a cookie this key signed and that has not expired, else ``None``."""
        if not cookie or cookie.count(".") != 2:
            return None
        session_id, expires, signature = cookie.split(".")
        # Compared as bytes: compare_digest raises on a str holding non-ASCII characters.
        if not hmac.compare_digest(signature.encode(), self._sign(f"{session_id}.{expires}").encode()):
            return None
        if not expires.isdigit() or int(expires) < self._clock():
            return None
        return session_id

    def csrf_token(self, session_id: str) -> str:
        return self._sign(f"csrf.{session_id}")


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host.removeprefix("::ffff:")).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    """``[::1]:8000`` → ``::1``; ``localhost:8000`` → ``localhost``."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


def token_matches(admin_token: Secret, supplied: str) -> bool:
    return hmac.compare_digest(supplied.encode(), admin_token.reveal().encode())


def same_origin(conn: HTTPConnection) -> bool:
    """Whether a browser says this request comes from one of our own pages.

    ``Sec-Fetch-Site`` is sent by every current browser; ``Origin`` is the fallback. A request with neither
    is not from a browser page, and still needs the CSRF token.
    """
    site = conn.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = conn.headers.get("origin")
    if origin is not None:
        return urlsplit(origin).netloc == conn.headers.get("host", "")
    return True


def check_csrf(conn: HTTPConnection, access: Access, supplied: str | None) -> None:
    """Refuse a state-changing request that a cross-site page could have made."""
    if access.kind == "bearer":
        return
    if not same_origin(conn):
        raise Forbidden(
            "cross-site request refused: this action only accepts requests from the dashboard itself",
            reason="cross_site_request",
        )
    if (
        not supplied
        or access.csrf_token is None
        or not hmac.compare_digest(supplied.encode(), access.csrf_token.encode())
    ):
        raise Forbidden(
            f"header {CSRF_HEADER.title()} is missing or does not match this session's CSRF token",
            reason="csrf_token_mismatch",
        )


class Gate:
    """The decision for one request; raises an ``HTTPError`` when it may not pass."""

    def __init__(self, admin_token: Secret | None, sessions: Sessions, throttle: Throttle | None = None) -> None:
        self.admin_token = admin_token
        self.sessions = sessions
        self.throttle = throttle or Throttle()

    def check_throttle(self, client: str | None) -> None:
        """Refuse a client that failed too often lately, before any comparison with the token."""
        if (wait := self.throttle.retry_after(client)) is not None:
            raise TooManyAttempts(wait)

    def admit(self, conn: HTTPConnection) -> Access:
        if self.admin_token is None:
            return self._loopback(conn)
        authorization = conn.headers.get("authorization")
        if authorization is not None:
            client = conn.client.host if conn.client else None
            self.check_throttle(client)
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and token_matches(self.admin_token, value.strip()):
                self.throttle.succeeded(client)
                return Access("bearer")
            self.throttle.failed(client)
            raise Unauthorized("header Authorization is not 'Bearer <WAVEHOOK_ADMIN_TOKEN>'", reason="bad_token")
        session_id = self.sessions.verify(conn.cookies.get(COOKIE_NAME))
        if session_id is None:
            raise Unauthorized(
                "this needs 'Authorization: Bearer <WAVEHOOK_ADMIN_TOKEN>' or a dashboard login",
                reason="login_required",
            )
        return Access("cookie", csrf_token=self.sessions.csrf_token(session_id), session_id=session_id)

    def _loopback(self, conn: HTTPConnection) -> Access:
        client = conn.client.host if conn.client else None
        if not is_loopback(client):
            raise Forbidden(
                "WAVEHOOK_ADMIN_TOKEN is not set, so only loopback clients are served; set it to allow others",
                reason="loopback_only",
            )
        host = _host_name(conn.headers.get("host", ""))
        if not (host.lower() in LOOPBACK_NAMES or is_loopback(host)):
            raise Forbidden(
                "WAVEHOOK_ADMIN_TOKEN is not set, so requests must name a loopback host (127.0.0.1, localhost)",
                reason="host_not_loopback",
            )
        return Access("loopback", csrf_token=self.sessions.csrf_token("loopback"))


def gate_for(scope: Scope, admin_token: Secret | None, clock: Callable[[], float]) -> Gate:
    """The app's Gate, made on first use: its key needs the ledger's session secret the lifespan reads."""
    state = receiver_state(scope["app"])
    if state.gate is None:
        sessions = Sessions.for_ledger(state.session_secret, admin_token, clock=clock)
        state.gate = Gate(admin_token, sessions, Throttle(clock=clock))
    return state.gate


class AccessControl:
    """ASGI middleware: public paths pass untouched; the rest pass the Gate (and the CSRF check if unsafe)."""

    def __init__(self, app: ASGIApp, *, admin_token: Secret | None, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.admin_token = admin_token
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope) if scope["type"] == "http" else ""
        if scope["type"] != "http" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        try:
            access = gate_for(scope, self.admin_token, self.clock).admit(conn)
            if access.session_id is not None:
                await _refuse_revoked(scope, access.session_id)
            if scope["method"] not in SAFE_METHODS:
                check_csrf(conn, access, conn.headers.get(CSRF_HEADER))
        except HTTPError as exc:
            logger.info("access_refused", path=scope["path"], reason=exc.reason, http_status=exc.status)
            await self._refusal(conn, path, exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["access"] = access
        await self.app(scope, receive, send)

    def _refusal(self, conn: HTTPConnection, path: str, exc: HTTPError) -> Response:
        is_page = not path.startswith(API_PREFIXES) and conn.scope["method"] in SAFE_METHODS
        if is_page and exc.reason == "login_required":
            base = base_path(conn.scope)
            return RedirectResponse(f"{base}/login?next={quote(base + path)}", status_code=303)
        response = error_response(exc)
        if exc.status == 401 and exc.reason != "too_many_attempts":
            response.headers["WWW-Authenticate"] = "Bearer"
        return response


async def _refuse_revoked(scope: Scope, session_id: str) -> None:
    """A session ended by logout stays ended, whichever process it comes back to."""
    if await receiver_state(scope["app"]).ledger.session_revoked(session_id):
        raise Unauthorized("this session was ended by logging out; log in again", reason="login_required")


def loopback_host(host: str) -> bool:
    """Whether ``serve`` (its ``--host``, else WAVEHOOK_HOST) listens on loopback only."""
    return host.lower() in LOOPBACK_NAMES or is_loopback(host.strip("[]"))


def startup_refusal(admin_token: Secret | None, host: str, allowed: bool) -> str | None:
    """Why ``serve`` will not start: beyond loopback without a token, unless explicitly allowed.

    Without a token the dashboard trusts loopback clients; a proxy on this host makes every client look like
    one (nginx's ``proxy_pass http://127.0.0.1:…`` sends no X-Forwarded-For), so the default is to refuse.
    """
    if admin_token is not None or allowed or loopback_host(host):
        return None
    return (
        f"serve would listen on {host} (--host, else WAVEHOOK_HOST), beyond loopback, but WAVEHOOK_ADMIN_TOKEN is "
        f"not set. Set it ({TOKEN_HELP}); or, "
        "if no proxy on this host forwards outside requests, set WAVEHOOK_ALLOW_NO_ADMIN_TOKEN=true to serve the "
        "dashboard, /api and /metrics to loopback clients only"
    )


def startup_warning(admin_token: Secret | None, host: str) -> str | None:
    """What ``wavehook serve`` says at start when the dashboard has no token to protect it."""
    if admin_token is not None:
        return None
    return (
        "warning: WAVEHOOK_ADMIN_TOKEN is not set, so the dashboard, /api and /metrics answer loopback clients "
        f"only (listening on {host}); set it to serve them to other clients behind a bearer token and a login"
    )
