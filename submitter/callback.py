"""The webhook URL a job carries: our public URL, the receiver's path, and the job's reference and token.

The token (an HMAC of the reference under the ledger's local secret, see ``receiver.correlation``) is a
second factor: a delivery for one of our jobs must come back to the URL we gave, so a leaked provider secret
alone cannot forge its events.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from receiver.correlation import REF_PARAM, TOKEN_PARAM, WEBHOOK_PATH, make_token
from submitter.errors import NotConfigured

PUBLIC_URL_HELP = (
    "WAVEHOOK_PUBLIC_URL is not set: give the base URL where the provider reaches this receiver "
    "(e.g. https://hooks.example.com), so jobs can carry their webhook"
)


def new_reference() -> str:
    """A local reference for one submission: unguessable, URL-safe, short."""
    return "wh_" + secrets.token_hex(12)


def webhook_url(public_url: str | None, reference: str, correlation_secret: str) -> str:
    """``public_url`` + the receiver's path, its own query kept, ``ref`` and ``token`` added."""
    if not public_url:
        raise NotConfigured(PUBLIC_URL_HELP)
    parts = urlsplit(public_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise NotConfigured(f"WAVEHOOK_PUBLIC_URL={public_url!r} is not an http:// or https:// URL")
    path = parts.path.rstrip("/")
    if not path.endswith(WEBHOOK_PATH):
        path += WEBHOOK_PATH
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in {REF_PARAM, TOKEN_PARAM}]
    query += [(REF_PARAM, reference), (TOKEN_PARAM, make_token(correlation_secret, reference))]
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))
