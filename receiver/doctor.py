"""The signature doctor behind ``wavehook verify``: valid, or exactly why not, naming the usual mistake."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Callable, Iterator

from cryptography.hazmat.primitives import hashes, hmac

from receiver.errors import SignatureError
from receiver.settings import Secret
from receiver.signature import SECRET_PREFIX, Verifier, signed_content, signing_key


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    valid: bool
    reason: str
    message: str
    hints: tuple[str, ...] = ()


def _hex_mac(key: bytes, content: bytes) -> str:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(content)
    return mac.finalize().hex()


def _b64_key(secret: str) -> bytes | None:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _bodies(body: bytes) -> Iterator[tuple[str, bytes]]:
    yield "the body had surrounding whitespace stripped", body.strip()
    yield "a trailing newline was added to the body", body + b"\n"
    try:
        data = json.loads(body)
    except ValueError:
        return
    yield "the JSON body was re-serialised (json.dumps defaults)", json.dumps(data).encode()
    yield "the JSON body was re-serialised compactly", json.dumps(data, separators=(",", ":")).encode()
    yield "the JSON body was re-serialised with sorted keys", json.dumps(data, sort_keys=True).encode()


def _keys(secret: str) -> Iterator[tuple[str, bytes]]:
    decoded = _b64_key(secret)
    if decoded is not None:
        yield "the key was base64-decoded (the v3 key is the secret's text as UTF-8)", decoded
    if not secret.startswith(SECRET_PREFIX):
        yield "the whsec_ prefix was kept in the key", (SECRET_PREFIX + secret).encode()
    else:
        yield "the whsec_ prefix was kept in the key", secret.encode()


def diagnose(
    secrets: list[str],
    webhook_id: str,
    timestamp: str,
    signature: str,
    body: bytes,
    *,
    tolerance_seconds: int = 300,
    clock: Callable[[], float] | None = None,
) -> Diagnosis:
    headers = {"webhook-id": webhook_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
    kwargs = {"clock": clock} if clock is not None else {}
    verifier = Verifier([Secret(s) for s in secrets], tolerance_seconds=tolerance_seconds, **kwargs)
    try:
        verifier.verify(headers, body)
    except SignatureError as exc:
        if exc.reason != "signature_mismatch":
            return Diagnosis(False, exc.reason, exc.message)
        return Diagnosis(False, exc.reason, exc.message, tuple(_mistakes(secrets, headers, body)))
    return Diagnosis(True, "valid", "the signature is valid")


def _mistakes(secrets: list[str], headers: dict[str, str], body: bytes) -> Iterator[str]:
    """Which plausible sender mistake reproduces the signature that was sent."""
    sent = {entry.partition(",")[2] for entry in headers["webhook-signature"].split()}
    webhook_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    found = False
    for index, secret in enumerate(secrets):
        label = f"secret #{index + 1}"
        for why, key in _keys(secret):
            if _hex_mac(key, signed_content(webhook_id, timestamp, body)) in sent:
                found = True
                yield f"matches with {label} if {why}"
        for why, other in _bodies(body):
            if _hex_mac(signing_key(secret), signed_content(webhook_id, timestamp, other)) in sent:
                found = True
                yield f"matches with {label} if {why}: verify the raw bytes as received"
    if not found:
        yield (
            "no usual mistake reproduces it: check that the secret is this account's "
            "(GET /api/v3/webhook/secret), and that the body file holds the exact bytes received"
        )
