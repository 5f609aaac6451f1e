"""The login form (``WAVEHOOK_ADMIN_TOKEN`` in, a signed session cookie out) and logout."""

from __future__ import annotations

from urllib.parse import parse_qs

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from receiver.dashboard.pages import html_page
from receiver.errors import Forbidden
from receiver.http.auth import COOKIE_NAME, SESSION_SECONDS, gate_for, same_origin, token_matches
from receiver.http.state import base_path, receiver_state
from receiver.http.webhook import read_body

logger = structlog.get_logger()
MAX_FORM_BYTES = 4096


def _next_path(raw: str | None, request: Request) -> str:
    """Only a path on this site: never ``//host`` or a full URL (no open redirect); else the dashboard."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return f"{base_path(request.scope)}/"
    return raw


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def login_form(request: Request) -> Response:
    if receiver_state(request.app).settings.admin_token is None:
        return RedirectResponse(f"{base_path(request.scope)}/", status_code=303)
    return html_page(request, "login.html", next=_next_path(request.query_params.get("next"), request), error=None)


async def login(request: Request) -> Response:
    state = receiver_state(request.app)
    admin_token = state.settings.admin_token
    if admin_token is None:
        return RedirectResponse(f"{base_path(request.scope)}/", status_code=303)
    if not same_origin(request):
        raise Forbidden("cross-site login refused", reason="cross_site_request")
    # Refused from Content-Length before reading, or as soon as a streamed form passes the cap.
    body = await read_body(request.receive, request.headers.get("content-length"), MAX_FORM_BYTES)
    form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
    next_path = _next_path(form.get("next"), request)
    gate = gate_for(request.scope, admin_token, state.clock)
    client = request.client.host if request.client else None
    if (wait := gate.throttle.retry_after(client)) is not None:
        logger.warning("login_throttled", client=client, retry_after=wait)
        error = f"Too many failed attempts from here; try again in {wait} s."
        page = html_page(request, "login.html", status_code=429, next=next_path, error=error)
        page.headers["retry-after"] = str(wait)
        return page
    if not token_matches(admin_token, form.get("token", "").strip()):
        gate.throttle.failed(client)
        logger.warning("login_failed", client=client)
        return html_page(request, "login.html", status_code=401, next=next_path, error="That is not the admin token.")
    gate.throttle.succeeded(client)
    cookie = gate.sessions.issue()
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=SESSION_SECONDS,
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    logger.info("login_succeeded", client=request.client.host if request.client else None)
    return response


async def logout(request: Request) -> Response:
    """Reached only through the access gate and its CSRF check (a POST with the page's token).

    The session is revoked in the ledger, not only deleted from this browser: a copy of the cookie is refused.
    """
    access = getattr(request.state, "access", None)
    if access is not None and access.session_id is not None:
        state = receiver_state(request.app)
        now = state.clock()
        await state.ledger.revoke_session(access.session_id, forget_after=now + SESSION_SECONDS, now=now)
        logger.info("logout", session_revoked=True)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE_NAME, path="/", secure=_secure(request), httponly=True, samesite="strict")
    return response
