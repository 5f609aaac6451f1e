"""Verification of WaveSpeedAI's ``v3`` webhook signatures, and nothing else.

Signed content is ``{webhook-id}.{webhook-timestamp}.{raw body}``; the signature is the hex HMAC-SHA256 of it,
keyed by the account secret without its ``whsec_`` prefix, taken as UTF-8 (not base64-decoded: this is not the
Standard Webhooks ``v1`` scheme). Verification is total: any malformed input raises ``SignatureError``.
"""

from __future__ import annotations

import dataclasses
import hmac
import time
from collections.abc import Callable, Iterable, Mapping

from receiver.errors import ConfigError, SignatureError
from receiver.settings import Secret

SCHEME = "v3"
SECRET_PREFIX = "whsec_"
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
MAX_ID_LENGTH = 256
# Unix seconds have 10 digits until the year 2286; a longer run of digits is not a timestamp (and Python
# refuses to parse integers of more than 4300 digits, which would otherwise escape as ValueError).
_MAX_TIMESTAMP_DIGITS = 18
_MAX_SCHEME_SHOWN = 16
# The provider's secrets are far longer; anything this short is a typo, a placeholder or a fragment of a secret
# that held a comma (the rotation separator), and would let anyone guess their way to a valid signature.
MIN_SECRET_LENGTH = 12
# A sender signs with one secret, two while rotating: a handful of entries is plenty. Bounding them (and the
# header) keeps what an unauthenticated request can make us parse and compare small and fixed.
MAX_SIGNATURES = 8
MAX_SIGNATURE_HEADER = 1024


def signing_key(secret: str) -> bytes:
    """The HMAC key for an account secret: the secret without ``whsec_``, as UTF-8 bytes."""
    return secret.removeprefix(SECRET_PREFIX).encode("utf-8")


def signed_content(webhook_id: str, timestamp: str, body: bytes) -> bytes:
    return b"%s.%s.%s" % (webhook_id.encode("utf-8"), timestamp.encode("ascii"), body)


@dataclasses.dataclass(frozen=True, slots=True)
class VerifiedDelivery:
    webhook_id: str
    timestamp: int


class Verifier:
    """Checks deliveries against one or more secrets (several while a secret is being rotated)."""

    def __init__(
        self,
        secrets: Iterable[Secret],
        *,
        tolerance_seconds: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        keys = tuple(signing_key(s.reveal()) for s in secrets)
        if not keys:
            raise ConfigError("a Verifier needs at least one secret")
        if not all(keys):
            # An empty key would make every sender able to sign: refuse it rather than verify with it.
            raise ConfigError(f"a webhook secret is empty once its {SECRET_PREFIX} prefix is removed")
        for position, key in enumerate(keys, start=1):
            if len(key) < MIN_SECRET_LENGTH:
                raise ConfigError(
                    f"webhook secret #{position} is {len(key)} characters once its {SECRET_PREFIX} prefix is "
                    f"removed; at least {MIN_SECRET_LENGTH} are needed (a short one can be guessed). Secrets are "
                    "separated by commas while rotating, so a secret cannot itself contain a comma"
                )
        # Keyed once: copying a keyed HMAC costs half of keying a new one, on every delivery. The standard
        # library's HMAC runs in OpenSSL as cryptography's does, without loading cryptography at start-up.
        self._macs = tuple(hmac.new(key, digestmod="sha256") for key in keys)
        self._tolerance = tolerance_seconds
        self._clock = clock

    def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedDelivery:
        webhook_id = _header(headers, HEADER_ID)
        raw_timestamp = _header(headers, HEADER_TIMESTAMP)
        raw_signatures = _header(headers, HEADER_SIGNATURE)
        if len(webhook_id) > MAX_ID_LENGTH or not webhook_id.isprintable():
            raise SignatureError(
                f"header {HEADER_ID} must be printable and at most {MAX_ID_LENGTH} characters",
                reason="malformed_header",
            )
        if not (raw_timestamp.isascii() and raw_timestamp.isdigit()) or len(raw_timestamp) > _MAX_TIMESTAMP_DIGITS:
            raise SignatureError(
                f"header {HEADER_TIMESTAMP} must be an integer number of Unix seconds "
                f"(at most {_MAX_TIMESTAMP_DIGITS} digits)",
                reason="invalid_timestamp",
            )
        digests = _v3_digests(raw_signatures)
        content = signed_content(webhook_id, raw_timestamp, body)
        if not self._matches(content, digests):
            raise SignatureError(
                f"header {HEADER_SIGNATURE} does not match the body under any configured secret",
                reason="signature_mismatch",
            )
        timestamp = int(raw_timestamp)
        skew = self._clock() - timestamp
        if skew > self._tolerance:
            raise SignatureError(
                f"header {HEADER_TIMESTAMP} is {int(skew)} s old, beyond the {self._tolerance} s tolerance",
                reason="stale_timestamp",
                authentic=True,
            )
        if -skew > self._tolerance:
            raise SignatureError(
                f"header {HEADER_TIMESTAMP} is {int(-skew)} s in the future, beyond the {self._tolerance} s tolerance",
                reason="future_timestamp",
                authentic=True,
            )
        return VerifiedDelivery(webhook_id=webhook_id, timestamp=timestamp)

    def _matches(self, content: bytes, digests: list[bytes]) -> bool:
        """One HMAC over the content per secret, compared in constant time with every entry."""
        matched = False
        for keyed in self._macs:
            mac = keyed.copy()
            mac.update(content)
            expected = mac.digest()
            for digest in digests:
                # No early return: the time taken does not depend on which entry (if any) matched.
                matched |= hmac.compare_digest(expected, digest)
        return matched


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise SignatureError(f"header {name} is missing", reason="missing_header")
    value = value.strip()
    if not value:
        raise SignatureError(f"header {name} is empty", reason="missing_header")
    return value


def _v3_digests(raw: str) -> list[bytes]:
    """The ``v3`` digests of a signature header (space-separated ``scheme,hex`` entries)."""
    if len(raw) > MAX_SIGNATURE_HEADER:
        raise SignatureError(
            f"header {HEADER_SIGNATURE} is longer than {MAX_SIGNATURE_HEADER} characters", reason="malformed_header"
        )
    entries = raw.split()
    if len(entries) > MAX_SIGNATURES:
        raise SignatureError(
            f"header {HEADER_SIGNATURE} holds {len(entries)} signatures; at most {MAX_SIGNATURES} are accepted",
            reason="malformed_header",
        )
    digests: list[bytes] = []
    schemes: list[str] = []
    for entry in entries:
        scheme, comma, value = entry.partition(",")
        if not comma or not scheme:
            raise SignatureError(
                f"header {HEADER_SIGNATURE} must look like 'v3,<64 hex digits>'", reason="malformed_header"
            )
        if scheme != SCHEME:
            # Another scheme is named whatever follows it (even nothing, as in "v1,"): say which scheme it is.
            schemes.append(scheme[:_MAX_SCHEME_SHOWN])
            continue
        if len(value) != 64 or not _HEX_DIGITS.issuperset(value):
            raise SignatureError(
                f"header {HEADER_SIGNATURE}: the v3 signature must be 64 hex digits",
                reason="malformed_header",
            )
        digests.append(bytes.fromhex(value))
    if not digests:
        raise SignatureError(
            f"header {HEADER_SIGNATURE} uses scheme {', '.join(sorted(set(schemes)))}; only v3 is supported",
            reason="unsupported_scheme",
        )
    return digests
