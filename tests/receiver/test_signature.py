"""The v3 verifier: the known-answer vector, each failure reason, rotation, tolerance and totality."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

# An HMAC implementation other than the verifier's (the standard library's): the base64-keyed variant below.
from cryptography.hazmat.primitives import hashes, hmac
from hypothesis import given
from hypothesis import strategies as st

from receiver.errors import ConfigError, SignatureError
from receiver.settings import Secret
from receiver.signature import Verifier
from tests.support import sign as independent_sign

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
VECTOR = json.loads((VECTORS / "signature-v3.json").read_text())
VECTOR_BODY = (VECTORS / "signature-v3-body.json").read_bytes()
VECTOR_TIME = int(VECTOR["webhook_timestamp"])
SECRET = "whsec_dGVzdC1zZWNyZXQ"
NOW = 1_800_000_000


def vector_headers(**overrides: str) -> dict[str, str]:
    headers = {
        "webhook-id": VECTOR["webhook_id"],
        "webhook-timestamp": VECTOR["webhook_timestamp"],
        "webhook-signature": VECTOR["webhook_signature"],
    }
    headers.update(overrides)
    return headers


def vector_verifier(secret: str = VECTOR["secret"], *, now: float = VECTOR_TIME) -> Verifier:
    return Verifier([Secret(secret)], clock=lambda: now)


def headers_for(
    body: bytes, *, secret: str = SECRET, webhook_id: str = "msg_1", timestamp: int = NOW
) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": independent_sign(secret, webhook_id, timestamp, body),
    }


def reason_of(verifier: Verifier, headers: dict[str, str], body: bytes) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verifier.verify(headers, body)
    return caught.value


def test_known_answer_vector_passes_with_clock_pinned() -> None:
    """The independently computed vector verifies when the clock is pinned to its timestamp."""
    assert len(VECTOR_BODY) == VECTOR["body_bytes"]
    verified = vector_verifier().verify(vector_headers(), VECTOR_BODY)
    assert verified.webhook_id == VECTOR["webhook_id"]
    assert verified.timestamp == VECTOR_TIME


def test_known_answer_vector_is_stale_on_todays_clock() -> None:
    """The same vector is refused as stale once the clock has moved past the tolerance."""
    error = reason_of(vector_verifier(now=VECTOR_TIME + 301), vector_headers(), VECTOR_BODY)
    assert error.reason == "stale_timestamp"


def test_vector_fails_when_the_key_is_base64_decoded() -> None:
    """Decoding the secret as base64 (the Standard Webhooks v1 habit) gives a signature that does not match."""
    raw = VECTOR["hmac_key_utf8"]
    decoded = base64.b64decode(raw + "=" * (-len(raw) % 4))
    mac = hmac.HMAC(decoded, hashes.SHA256())
    mac.update(f"{VECTOR['webhook_id']}.{VECTOR['webhook_timestamp']}.".encode() + VECTOR_BODY)
    wrong = f"v3,{mac.finalize().hex()}"
    assert wrong != VECTOR["webhook_signature"]
    error = reason_of(vector_verifier(), vector_headers(**{"webhook-signature": wrong}), VECTOR_BODY)
    assert error.reason == "signature_mismatch"


@pytest.mark.parametrize(
    "reserialise",
    [
        lambda data: json.dumps(data).encode(),
        lambda data: json.dumps(data, sort_keys=True, separators=(",", ":")).encode(),
        lambda data: json.dumps(data, indent=2).encode(),
    ],
    ids=["json-dumps-defaults", "sorted-keys", "indented"],
)
def test_vector_fails_when_the_body_is_reserialised(reserialise: object) -> None:
    """The signature covers the raw bytes: the same JSON serialised again no longer verifies."""
    assert callable(reserialise)
    body = reserialise(json.loads(VECTOR_BODY))
    assert body != VECTOR_BODY
    assert reason_of(vector_verifier(), vector_headers(), body).reason == "signature_mismatch"


def test_vector_fails_with_a_trailing_newline() -> None:
    """One extra byte at the end of the body is a mismatch."""
    assert reason_of(vector_verifier(), vector_headers(), VECTOR_BODY + b"\n").reason == "signature_mismatch"


def test_whsec_prefix_is_optional_in_the_configured_secret() -> None:
    """The secret configured without its whsec_ prefix yields the same key."""
    vector_verifier(VECTOR["hmac_key_utf8"]).verify(vector_headers(), VECTOR_BODY)


def test_key_with_whsec_prefix_kept_does_not_match() -> None:
    """A sender that keeps whsec_ in the key is refused."""
    body = b'{"id":"p1"}'
    wrong = independent_sign("whsec_" + SECRET, "msg_1", NOW, body)  # prefix removed once: whsec_ stays
    headers = headers_for(body) | {"webhook-signature": wrong}
    assert reason_of(Verifier([Secret(SECRET)], clock=lambda: NOW), headers, body).reason == "signature_mismatch"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_names_which(missing: str) -> None:
    """A missing header is refused with reason missing_header and a message naming the header."""
    body = b'{"id":"p1"}'
    headers = headers_for(body)
    del headers[missing]
    error = reason_of(Verifier([Secret(SECRET)], clock=lambda: NOW), headers, body)
    assert error.reason == "missing_header"
    assert missing in error.message
    assert error.status == 401


def test_empty_header_counts_as_missing() -> None:
    """A header that is present but blank is as good as missing."""
    body = b'{"id":"p1"}'
    error = reason_of(Verifier([Secret(SECRET)]), headers_for(body) | {"webhook-signature": "  "}, body)
    assert (error.reason, "webhook-signature" in error.message) == ("missing_header", True)


@pytest.mark.parametrize(
    "signature",
    ["v3", "v3,", "v3,xyz", "v3," + "g" * 64, "v3," + "a" * 63, ",abcdef", "v3;" + "a" * 64],
    ids=["no-comma", "empty-digest", "short", "non-hex", "63-digits", "no-scheme", "semicolon"],
)
def test_malformed_signature_header(signature: str) -> None:
    """A signature header that is not 'v3,<64 hex digits>' is refused as malformed."""
    body = b'{"id":"p1"}'
    error = reason_of(Verifier([Secret(SECRET)]), headers_for(body) | {"webhook-signature": signature}, body)
    assert error.reason == "malformed_header"
    assert "webhook-signature" in error.message


def test_malformed_webhook_id() -> None:
    """A webhook-id with control characters or of absurd length is refused as malformed."""
    body = b'{"id":"p1"}'
    verifier = Verifier([Secret(SECRET)], clock=lambda: NOW)
    for bad in ("a\tb", "x" * 257):
        error = reason_of(verifier, headers_for(body, webhook_id=bad), body)
        assert (error.reason, "webhook-id" in error.message) == ("malformed_header", True)


@pytest.mark.parametrize("signature", ["v1,", "v1,c2lnbmF0dXJl", "v2,abc v1,def"])
def test_unsupported_scheme(signature: str) -> None:
    """A header carrying only other schemes is refused as unsupported, naming the scheme."""
    body = b'{"id":"p1"}'
    error = reason_of(Verifier([Secret(SECRET)]), headers_for(body) | {"webhook-signature": signature}, body)
    assert error.reason == "unsupported_scheme"
    assert "v1" in error.message


def test_v3_entry_among_other_schemes_is_used() -> None:
    """Several space-separated entries are allowed; the v3 one is checked."""
    body = b'{"id":"p1"}'
    headers = headers_for(body)
    headers["webhook-signature"] = "v1,c2lnbmF0dXJl " + headers["webhook-signature"]
    Verifier([Secret(SECRET)], clock=lambda: NOW).verify(headers, body)


def test_signature_mismatch_never_reveals_the_expected_signature() -> None:
    """A wrong signature is refused with reason signature_mismatch; the message holds neither key nor digest."""
    body = b'{"id":"p1"}'
    headers = headers_for(body) | {"webhook-signature": "v3," + "0" * 64}
    error = reason_of(Verifier([Secret(SECRET)], clock=lambda: NOW), headers, body)
    assert error.reason == "signature_mismatch"
    expected = independent_sign(SECRET, "msg_1", NOW, body).removeprefix("v3,")
    for leaked in (expected, SECRET, SECRET.removeprefix("whsec_")):
        assert leaked not in error.message
    assert not error.authentic


@pytest.mark.parametrize(("offset", "reason"), [(-301, "stale_timestamp"), (301, "future_timestamp")])
def test_timestamp_beyond_tolerance(offset: int, reason: str) -> None:
    """A correctly signed delivery 301 s away from the clock, either way, is refused but marked authentic."""
    body = b'{"id":"p1"}'
    error = reason_of(Verifier([Secret(SECRET)], clock=lambda: NOW), headers_for(body, timestamp=NOW + offset), body)
    assert error.reason == reason
    assert error.authentic


@pytest.mark.parametrize("offset", [-300, 300, 0])
def test_timestamp_within_tolerance(offset: int) -> None:
    """Exactly 300 s either way is still accepted."""
    body = b'{"id":"p1"}'
    Verifier([Secret(SECRET)], clock=lambda: NOW).verify(headers_for(body, timestamp=NOW + offset), body)


def test_tolerance_is_configurable() -> None:
    """A 10 s tolerance refuses what the default 300 s accepts."""
    body = b'{"id":"p1"}'
    headers = headers_for(body, timestamp=NOW - 11)
    Verifier([Secret(SECRET)], clock=lambda: NOW).verify(headers, body)
    error = reason_of(Verifier([Secret(SECRET)], tolerance_seconds=10, clock=lambda: NOW), headers, body)
    assert error.reason == "stale_timestamp"


@pytest.mark.parametrize("timestamp", ["12.5", "-5", "1e9", "soon", "１２３", "9" * 19, "7" * 5000])
def test_non_integer_timestamp(timestamp: str) -> None:
    """A timestamp that is not a plain integer of Unix seconds is refused as invalid_timestamp, even if signed."""
    body = b'{"id":"p1"}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": timestamp,
        "webhook-signature": independent_sign(SECRET, "msg_1", timestamp, body),
    }
    error = reason_of(Verifier([Secret(SECRET)], clock=lambda: NOW), headers, body)
    assert error.reason == "invalid_timestamp"
    assert "webhook-timestamp" in error.message


def test_rotation_accepts_every_configured_secret() -> None:
    """While rotating, a delivery signed with either the old or the new secret verifies."""
    old, new = "whsec_b2xkLXNlY3JldA", "whsec_bmV3LXNlY3JldA"
    verifier = Verifier([Secret(old), Secret(new)], clock=lambda: NOW)
    body = b'{"id":"p1"}'
    for secret in (old, new):
        verifier.verify(headers_for(body, secret=secret), body)
    error = reason_of(verifier, headers_for(body, secret="whsec_b3RoZXI"), body)
    assert error.reason == "signature_mismatch"


def test_verifier_refuses_no_secret_and_empty_secret() -> None:
    """A Verifier without a secret, or with one that is only the whsec_ prefix, is a configuration error."""
    with pytest.raises(ConfigError):
        Verifier([])
    with pytest.raises(ConfigError, match="empty"):
        Verifier([Secret("whsec_")])


def test_headers_are_read_case_insensitively_from_starlette() -> None:
    """Headers as Starlette hands them over (case-insensitive) verify like a plain dict."""
    from starlette.datastructures import Headers

    body = b'{"id":"p1"}'
    headers = Headers(headers={name.title(): value for name, value in headers_for(body).items()})
    Verifier([Secret(SECRET)], clock=lambda: NOW).verify(headers, body)


@given(
    webhook_id=st.one_of(st.none(), st.text(max_size=300)),
    timestamp=st.one_of(st.none(), st.text(max_size=30), st.integers().map(str)),
    signature=st.one_of(st.none(), st.text(max_size=200), st.from_regex(r"v[0-9],[0-9a-fA-F]{0,70}", fullmatch=True)),
    body=st.binary(max_size=64),
)
def test_verification_is_total(
    webhook_id: str | None, timestamp: str | None, signature: str | None, body: bytes
) -> None:
    """Whatever the headers hold, verification either passes or raises SignatureError, never anything else."""
    headers = {
        name: value
        for name, value in (
            ("webhook-id", webhook_id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signature),
        )
        if value is not None
    }
    reason = "valid"
    try:
        Verifier([Secret(SECRET)], clock=lambda: NOW).verify(headers, body)
    except SignatureError as exc:
        reason = exc.reason
    assert reason in {
        "valid",
        "missing_header",
        "malformed_header",
        "unsupported_scheme",
        "signature_mismatch",
        "stale_timestamp",
        "future_timestamp",
        "invalid_timestamp",
    }


class CountingMac:
    """A keyed HMAC that counts how often it is copied: once per HMAC computed over a delivery."""

    def __init__(self, mac: Any) -> None:
        self.mac = mac
        self.copies = 0

    def copy(self) -> Any:
        self.copies += 1
        return self.mac.copy()


def test_one_hmac_per_secret_however_many_entries() -> None:
    """Eight entries (the most accepted) under two secrets cost two HMACs over the body, not sixteen."""
    other = "whsec_b3RoZXItc2VjcmV0LWZvci10ZXN0cw"
    verifier = Verifier([Secret(other), Secret(SECRET)], clock=lambda: NOW)
    counting = [CountingMac(mac) for mac in verifier._macs]
    verifier._macs = tuple(counting)  # type: ignore[assignment]
    body = b'{"id": "p1"}'
    headers = headers_for(body)
    headers["webhook-signature"] = " ".join(["v3," + "0" * 64] * 7 + [headers["webhook-signature"]])
    assert verifier.verify(headers, body).webhook_id == "msg_1"
    assert [mac.copies for mac in counting] == [1, 1]


@pytest.mark.parametrize(
    "signature",
    [
        " ".join(["v3," + "0" * 64] * 9),  # one entry more than the eight accepted
        " ".join(["v3," + "0" * 64] * 12_000),  # what froze the event loop for seconds
        "v1," + "A" * 2000,  # one entry, but a header beyond the size limit
        "v3," + "0" * 64 + " " * 2000 + "v3," + "1" * 64,
    ],
    ids=["nine-entries", "twelve-thousand-entries", "oversized-other-scheme", "oversized-whitespace"],
)
def test_too_many_entries_or_too_long_a_header_is_malformed(signature: str) -> None:
    """Beyond eight entries or 1024 characters the header is refused as malformed, before any HMAC."""
    body = b'{"id": "p1"}'
    verifier = Verifier([Secret(SECRET)], clock=lambda: NOW)
    counting = CountingMac(verifier._macs[0])
    verifier._macs = (counting,)  # type: ignore[assignment]
    headers = headers_for(body)
    headers["webhook-signature"] = signature
    with pytest.raises(SignatureError) as info:
        verifier.verify(headers, body)
    assert info.value.reason == "malformed_header"
    assert "webhook-signature" in info.value.message
    assert counting.copies == 0


@pytest.mark.parametrize(
    ("configured", "position"),
    [("whsec_abc", 1), ("Zq9", 1), ("whsec_dGVzdC1zZWNyZXQtZm9yLXdhdmVob29r,xyz", 2), ("whsec_ab,cd", 1)],
)
def test_secrets_too_short_to_be_secrets_are_refused(configured: str, position: int) -> None:
    """A secret (or a fragment of one split at a comma, the rotation separator) under 12 characters is a
    configuration error naming which one, its length and the comma rule; the secret itself is never shown."""
    secrets = [Secret(part) for part in configured.split(",")]
    with pytest.raises(ConfigError) as info:
        Verifier(secrets)
    message = str(info.value)
    assert f"#{position}" in message
    assert "at least 12" in message
    assert "comma" in message
    assert all(part.removeprefix("whsec_") not in message for part in configured.split(","))
