"""Correlation tokens: a second factor carried in the webhook URL of jobs we submitted ourselves.

The submitter adds ``ref=<local reference>&token=<HMAC(local secret, ref)>`` to the webhook URL; the receiver
refuses a delivery whose token does not match its ref, and the ledger refuses a delivery for one of our
predictions that does not carry that prediction's own ref (``store.ingest.check_reference``), so a leaked
provider secret alone cannot forge events for our jobs. Deliveries for predictions the ledger holds no reference
for (jobs submitted by other tools) are accepted on the signature alone.

The secret lives in the ledger, shared by every process and machine using it. ``WAVEHOOK_CORRELATION_SECRET``
can give it too (comma-separated while rotating): tokens are then made with the first one given, and a token
made with any of them, or with the ledger's own, is accepted, so jobs in flight survive a replaced disk, a
move to another ledger, or a rotation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from receiver.errors import BadRequest, TokenMismatch

# Where the provider delivers: the receiver's route, and the path of every webhook URL a job carries.
WEBHOOK_PATH = "/webhooks/wavespeed"
REF_PARAM = "ref"
TOKEN_PARAM = "token"
_MAX_REF = 128


def make_token(secret: str, reference: str) -> str:
    return hmac.new(secret.encode(), reference.encode(), hashlib.sha256).hexdigest()[:32]


@dataclasses.dataclass(frozen=True, slots=True)
class Keys:
    """The secret new tokens are made with, and every secret a token may have been made with."""

    signing: str
    accepted: tuple[str, ...]

    @classmethod
    def of(cls, configured: Sequence[str], ledger_secret: str) -> Keys:
        accepted = tuple(dict.fromkeys([*configured, ledger_secret]))
        return cls(signing=accepted[0], accepted=accepted)


def check(secrets: Sequence[str], reference: str | None, token: str | None) -> str | None:
    """The verified reference of a delivery (its token made with one of ``secrets``), or ``None`` when it
    carries none."""
    if reference is None and token is None:
        return None
    if not reference:
        raise BadRequest(f"query parameter {REF_PARAM} is missing beside {TOKEN_PARAM}", reason="missing_ref")
    if len(reference) > _MAX_REF:
        raise BadRequest(f"query parameter {REF_PARAM} is longer than {_MAX_REF} characters", reason="bad_ref")
    if not token:
        raise TokenMismatch(f"query parameter {TOKEN_PARAM} is missing for {REF_PARAM}={reference}")
    # Compared as bytes: compare_digest refuses str holding non-ASCII characters (a TypeError, not a 401).
    given = token.encode("utf-8", "replace")
    if isinstance(secrets, str):  # one secret, not its characters
        secrets = (secrets,)
    if not any(hmac.compare_digest(make_token(secret, reference).encode(), given) for secret in secrets):
        raise TokenMismatch(f"query parameter {TOKEN_PARAM} does not match {REF_PARAM}={reference}")
    return reference


def redact(url: str) -> str:
    """``url`` with its correlation token masked: the token is a per-job credential, never shown back."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (name, "[redacted]" if name == TOKEN_PARAM else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="[]")))
