"""The provider's ``v3`` webhook signature, written here on its own so that a bug in the receiver's verifier
cannot hide behind the same bug in the signer."""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """``v3,<hex HMAC-SHA256>`` of ``{id}.{timestamp}.{body}``, keyed by the secret without ``whsec_``."""
    key = secret.removeprefix("whsec_").encode("utf-8")
    content = f"{webhook_id}.{timestamp}.".encode() + body
    return "v3," + hmac.new(key, content, hashlib.sha256).hexdigest()


def headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }
