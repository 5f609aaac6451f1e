"""Built-in ``forward``: POST a compact notification of each outcome to WAVEHOOK_FORWARD_URL.

Signed with the Standard Webhooks scheme (``v1``: HMAC-SHA256 of ``{id}.{timestamp}.{body}`` under the
base64-decoded ``whsec_`` key, base64 in the header), so the receiving side verifies it with any Standard
Webhooks library. The ``webhook-id`` is stable per (prediction, status): a retried run sends the same id,
which is what lets the receiver deduplicate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from receiver.handlers.registry import on
from receiver.timestamps import iso_utc

if TYPE_CHECKING:
    from receiver.handlers.context import Context, StoredOutput
    from receiver.handlers.prediction import Prediction


class ForwardError(Exception):
    """The forward URL did not accept the notification; the run is retried like any failure."""


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def notification(prediction: Prediction, now: float, stored: Sequence[StoredOutput] = ()) -> dict[str, Any]:
    return {
        "type": f"prediction.{prediction.status}",
        "timestamp": iso_utc(now),
        "data": {
            "id": prediction.id,
            "model": prediction.model,
            "status": prediction.status,
            "outputs": list(prediction.outputs),
            "error": prediction.error,
            "reference": prediction.reference,
            # The kept copies (download_outputs runs first): the provider deletes its outputs after 7 days.
            "stored": [output.as_json() for output in stored],
        },
    }


@on(
    "*",
    name="forward",
    enabled=lambda settings: settings.dispatch.forward_url is not None,
    after="download_outputs",  # so the notification can include the stored copies
)
async def forward(prediction: Prediction, ctx: Context) -> None:
    """Send the outcome to the configured URL; anything but a 2xx answer fails the attempt."""
    url = ctx.settings.dispatch.forward_url
    secret = ctx.settings.dispatch.forward_secret
    if url is None or secret is None:
        raise ForwardError("WAVEHOOK_FORWARD_URL and WAVEHOOK_FORWARD_SECRET are both needed")
    now = ctx.clock()
    body = json.dumps(notification(prediction, now, ctx.downloads), separators=(",", ":")).encode()
    message_id = f"msg_{prediction.id}_{prediction.status}"
    timestamp = int(now)
    response = await ctx.http.post(
        url,
        content=body,
        headers={
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_signature(secret.reveal(), message_id, timestamp, body),
        },
    )
    if not response.is_success:
        # Only the origin: a forward URL's path often carries a credential, and errors are shown on the dashboard.
        origin = response.request.url.copy_with(path="/", query=None, fragment=None)
        raise ForwardError(f"POST to {origin} answered {response.status_code}")
