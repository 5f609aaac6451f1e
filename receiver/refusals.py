"""Refused deliveries, counted in memory by reason: what ``/api/summary`` and the dashboard show.

Nothing here writes to the ledger: an unauthenticated request must never make the service write, so a
refusal costs one dictionary update. The counts are per process (with ``serve --workers N`` each worker
counts what it answered; ``wavehook_deliveries_total`` in ``/metrics`` sums them over the workers) and start
again at zero with the process.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import structlog

logger = structlog.get_logger()

# Refusals that mean a configuration mistake on one side or the other rather than noise from the internet:
# they are logged at warning, at most once per reason per WARN_INTERVAL.
LOUD = frozenset({"signature_mismatch", "token_mismatch"})
WARN_INTERVAL = 60.0
_MAX_ID = 256  # a refused webhook-id is shown back as it came; longer ones are cut (ids are at most 256 too)

_SIGNING = (
    "The sender does not sign like this receiver expects: check the provider's signing scheme and "
    "that nothing in between rewrites the headers."
)
_BODY = "A signed delivery whose body is not a prediction; it is kept in quarantine for inspection."
# What each reason means and what to check, shown beside its count on the dashboard.
EXPLANATIONS: dict[str, str] = {
    "signature_mismatch": (
        "The signature matches none of the configured secrets. WAVESPEED_WEBHOOK_SECRET of this receiver is "
        "not the secret the provider signs with: `wavehook secret` prints your account's; with the sandbox, "
        "both sides need the same value. `wavehook verify` says which usual mistake reproduces a saved delivery."
    ),
    "token_mismatch": (
        "Signed by the provider, but the job's token does not match its reference: the job was submitted "
        "against another ledger (WAVEHOOK_DB) or another WAVEHOOK_CORRELATION_SECRET than this receiver uses. "
        "Run `submit` with the same WAVEHOOK_DB as `serve`. Kept in quarantine."
    ),
    "stale_timestamp": (
        "Signed, but older than WAVEHOOK_TOLERANCE_SECONDS: this machine's clock is behind, or the delivery "
        "was retried for longer than the tolerance. Check the clock (`wavehook doctor`). Kept in quarantine."
    ),
    "future_timestamp": (
        "Signed, but dated ahead of this machine's clock by more than WAVEHOOK_TOLERANCE_SECONDS: this clock "
        "is behind (check NTP with `wavehook doctor`), or the timestamp is in milliseconds. Kept in quarantine."
    ),
    "missing_header": (
        "A webhook-id, webhook-timestamp or webhook-signature header was missing: not a provider delivery "
        "(a probe, or a proxy that drops headers)."
    ),
    "malformed_header": _SIGNING,
    "unsupported_scheme": _SIGNING,
    "invalid_timestamp": _SIGNING,
    "invalid_json": _BODY,
    "not_an_object": _BODY,
    "missing_id": _BODY,
    "invalid_text": _BODY,
    "missing_ref": "The webhook URL's ref/token pair is incomplete; submit jobs with `wavehook submit`.",
    "bad_ref": "The webhook URL's ref parameter is malformed; submit jobs with `wavehook submit`.",
    "body_too_large": "The body is over WAVEHOOK_MAX_BODY_BYTES; raise it if genuine deliveries are that big.",
    "bad_content_length": "The Content-Length header is not a number: not a provider delivery.",
    "client_disconnected": "The sender hung up before the whole body arrived; it retries if it is the provider.",
}
DEFAULT_EXPLANATION = "The delivery was refused; its reason is in the receiver's `webhook_rejected` log line."


def explain(reason: str) -> str:
    return EXPLANATIONS.get(reason, DEFAULT_EXPLANATION)


@dataclasses.dataclass(slots=True)
class Tally:
    count: int = 0
    last_at: float = 0.0
    last_webhook_id: str | None = None
    warned_at: float | None = None  # when the last warning line for this reason was written
    unwarned: int = 0  # refusals since that warning


class Refusals:
    """Refused deliveries of this process by reason, each with a count, the last time and the last webhook-id.

    The reasons are the receiver's own codes, a short fixed list, so the mapping stays small whatever is sent.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, warn_interval: float = WARN_INTERVAL) -> None:
        self._clock = clock
        self._warn_interval = warn_interval
        self._tallies: dict[str, Tally] = {}

    def record(self, reason: str, webhook_id: str | None) -> None:
        now = self._clock()
        tally = self._tallies.get(reason)
        if tally is None:
            tally = self._tallies[reason] = Tally()
        tally.count += 1
        tally.last_at = now
        tally.last_webhook_id = webhook_id[:_MAX_ID] if webhook_id else None
        if reason in LOUD:
            self._maybe_warn(reason, tally, now)

    def _maybe_warn(self, reason: str, tally: Tally, now: float) -> None:
        if tally.warned_at is not None and now - tally.warned_at < self._warn_interval:
            tally.unwarned += 1
            return
        logger.warning(
            "deliveries_refused",
            reason=reason,
            webhook_id=tally.last_webhook_id,
            since_last_warning=tally.unwarned + 1,
            total=tally.count,
            hint=explain(reason),
        )
        tally.warned_at = now
        tally.unwarned = 0

    def as_json(self) -> dict[str, dict[str, object]]:
        """``{reason: {"count", "last_at", "last_webhook_id"}}``, the reasons sorted."""
        return {
            reason: {"count": t.count, "last_at": t.last_at, "last_webhook_id": t.last_webhook_id}
            for reason, t in sorted(self._tallies.items())
        }

    def panel(self) -> list[dict[str, object]]:
        """The dashboard's rows: most frequent first, each with what it means and what to check."""
        ordered = sorted(self._tallies.items(), key=lambda item: (-item[1].count, item[0]))
        return [
            {
                "reason": reason,
                "count": t.count,
                "last_at": t.last_at,
                "last_webhook_id": t.last_webhook_id,
                "explanation": explain(reason),
            }
            for reason, t in ordered
        ]
