"""The process's file descriptor limit: every connection holds one, and so do the ledger's files."""

from __future__ import annotations

import resource

import structlog

logger = structlog.get_logger()
# Descriptors kept for the ledger, its WAL, logs, the dispatcher's downloads and the listening socket.
RESERVED = 64


def raise_soft_limit(wanted_connections: int) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the connections that then fit (at most ``wanted``).

    Past the descriptor limit every accept fails and nothing is answered or logged; a cap below it makes the
    surplus get a clear 503 instead.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or target <= soft:
        target = soft
    else:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            logger.warning("file_descriptor_limit_kept", soft=soft, hard=hard, error=str(exc))
            target = soft
    fits = max(
        1, wanted_connections if target == resource.RLIM_INFINITY else min(wanted_connections, target - RESERVED)
    )
    if fits < wanted_connections:
        logger.warning("max_connections_lowered", wanted=wanted_connections, allowed=fits, nofile=target)
    logger.info("file_descriptor_limit", soft=target, hard=hard, max_connections=fits)
    return fits
