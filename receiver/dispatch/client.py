"""The HTTP client handlers share: one per process, long-lived."""

from __future__ import annotations

import httpx

USER_AGENT = "wavehook"


def http_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The process's one long-lived client for handlers (downloads, forwards, the user's own calls)."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(60.0, connect=10.0),
        headers={"user-agent": USER_AGENT},
        follow_redirects=False,
    )
