"""Refused deliveries that concern a job being waited for, named while ``submit --wait`` waits.

Two places know of them: the ledger's quarantine holds the signed ones (a wrong correlation token, a stale
timestamp), under the job's prediction id; the receiver's ``/api/summary`` counts the rest in memory
(``signature_mismatch``: the secrets differ). The receiver is asked at ``WAVEHOOK_PUBLIC_URL`` with the admin
token when one is set; a receiver that cannot be asked (another host, behind a tunnel) leaves only the ledger.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from receiver.refusals import explain
from receiver.settings import Settings
from receiver.store.ledger import Ledger

Summary = Callable[[], Awaitable[dict[str, Any] | None]]


def receiver_summary(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> Summary | None:
    """A reader of the receiver's refused deliveries, or ``None`` without a public URL."""
    if not settings.public_url:
        return None
    parts = urlsplit(settings.public_url)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/api/summary", "", ""))
    headers = {"authorization": f"Bearer {settings.admin_token.reveal()}"} if settings.admin_token else {}

    async def read() -> dict[str, Any] | None:
        try:
            async with httpx.AsyncClient(transport=transport, timeout=2.0) as http:
                response = await http.get(url, headers=headers)
        except httpx.HTTPError:
            return None
        if not response.is_success:
            return None
        try:
            found = response.json().get("refused_deliveries")
        except ValueError:
            return None
        return found if isinstance(found, dict) else None

    return read


class RefusalWatch:
    """Each refusal that concerns one job, reported once: ``check()`` returns the sentences not said yet."""

    def __init__(self, ledger: Ledger, prediction_id: str, *, since: float, summary: Summary | None) -> None:
        self.ledger = ledger
        self.prediction_id = prediction_id
        self.since = since
        self.summary = summary
        self.said: dict[str, str] = {}  # reason -> the sentence that named it

    async def check(self) -> list[str]:
        found = await self._quarantined()
        if self.summary is not None:
            found.update(await self._counted())
        fresh = {reason: text for reason, text in found.items() if reason not in self.said}
        self.said.update(fresh)
        return list(fresh.values())

    async def _quarantined(self) -> dict[str, str]:
        row = await self.ledger.get_prediction(self.prediction_id)
        reasons: dict[str, int] = {}
        for kept in row["quarantined"] if row else ():
            reasons[kept["reason"]] = reasons.get(kept["reason"], 0) + int(kept["count"])
        return {
            reason: f"the receiver refused {count} signed delivery(ies) of this job ({reason}): {explain(reason)}"
            for reason, count in reasons.items()
        }

    async def _counted(self) -> dict[str, str]:
        assert self.summary is not None
        refused = await self.summary() or {}
        found: dict[str, str] = {}
        for reason, tally in refused.items():
            if not isinstance(tally, dict) or float(tally.get("last_at") or 0) < self.since:
                continue
            ours = self.prediction_id in str(tally.get("last_webhook_id") or "")
            which = "of this job" if ours else "since this job was sent"
            found[reason] = (
                f"the receiver refused deliveries {which} ({reason}, {tally.get('count')} since it started): "
                f"{explain(reason)}"
            )
        return found
