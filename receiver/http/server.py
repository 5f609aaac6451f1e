"""The uvicorn server the receiver runs under: one source of its settings.

``wavehook serve`` passes these to ``uvicorn.run``, and so do the benchmarks' baselines (``scripts/bench/
serve.py``): a bare app compared with the receiver runs under the same server, protocol and limits, and the two
cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from receiver.http.connections import GuardedProtocol
from receiver.http.file_descriptors import raise_soft_limit
from receiver.settings import Settings


def uvicorn_options(settings: Settings, *, workers: int = 1, access_log: bool = False) -> dict[str, Any]:
    """``uvicorn.run``'s keyword arguments for everything but the app, host and port.

    Raises the process's file descriptor limit first (``raise_soft_limit``): the connection cap is what fits.
    """
    limits = settings.connections
    return {
        "workers": workers,
        "access_log": access_log,
        # uvicorn's own lines go through the process's logging set-up (JSON when not on a terminal).
        "log_config": None,
        "log_level": settings.log_level,
        "server_header": False,
        "http": GuardedProtocol,  # header and body deadlines, a header cap, a JSON 503 past the limit
        "timeout_keep_alive": limits.keep_alive_seconds,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "limit_concurrency": raise_soft_limit(limits.max_connections),
        # No route is a WebSocket: uvicorn need not load its WebSocket protocol (part of a cold start).
        "ws": "none",
    }
