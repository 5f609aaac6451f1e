"""The signature doctor behind ``wavehook verify``: valid, or exactly why not, naming the usual mistake."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import json
from collections.abc import Callable, Iterator

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
    return hmac.digest(key, content, "sha256").hex()


def _b64_keys(secret: str) -> Iterator[bytes]:
    raw = secret.removeprefix(SECRET_PREFIX)
    padded = raw + "=" * (-len(raw) % 4)
    decoded: list[bytes] = []
    for altchars in (b"+/", b"-_"):  # standard and URL-safe alphabets
        try:
            key = base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        if key not in decoded:
            decoded.append(key)
            yield key


_RAW = "verify the raw bytes exactly as received, and save them unchanged"


def _bodies(body: bytes) -> Iterator[tuple[str, bytes]]:
    """Other bytes a sender or a receiver commonly turns this body into, each with what that mistake is."""
    whitespace = f"the signed bytes and this body differ only in surrounding whitespace; {_RAW}"
    if body.strip() != body:
        yield f"the body with its surrounding whitespace stripped: {whitespace}", body.strip()
    yield f"the body with a trailing newline added: {whitespace}", body + b"\n"
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return
    variants = [
        ("json.dumps defaults", json.dumps(data)),
        ("compact separators", json.dumps(data, separators=(",", ":"))),
        ("compact separators without ASCII escaping", json.dumps(data, separators=(",", ":"), ensure_ascii=False)),
        ("sorted keys", json.dumps(data, sort_keys=True)),
    ]
    seen = {body}
    for how, text in variants:
        other = text.encode("utf-8", "surrogatepass")  # JSON may hold lone surrogate escapes
        if other not in seen:
            seen.add(other)
            yield (
                f"the JSON re-serialised ({how}): the signed bytes and this body differ in JSON formatting; {_RAW}",
                other,
            )


def _keys(secret: str) -> Iterator[tuple[str, bytes]]:
    for decoded in _b64_keys(secret):
        yield "the key base64-decoded (the v3 key is the secret's text, without whsec_, as UTF-8 bytes)", decoded
    yield (
        "the whsec_ prefix kept in the key (it must be removed)",
        (SECRET_PREFIX + secret.removeprefix(SECRET_PREFIX)).encode(),
    )


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
        if exc.authentic:
            hint = "the signature itself is right; to check a saved delivery, pass --now with the time it arrived"
            return Diagnosis(False, exc.reason, exc.message, (hint,))
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
        # The mistakes are tried simplest first; the first that reproduces the signature is the explanation.
        for why, key in _keys(secret):
            if _hex_mac(key, signed_content(webhook_id, timestamp, body)) in sent:
                found = True
                yield f"it matches {label} with {why}"
                break
        for why, other in _bodies(body):
            if _hex_mac(signing_key(secret), signed_content(webhook_id, timestamp, other)) in sent:
                found = True
                yield f"it matches {label} over {why}"
                break
    if not found:
        yield (
            "no usual mistake reproduces it: check that the secret is this account's "
            "(GET /api/v3/webhook/secret), and that the body file holds the exact bytes received"
        )
