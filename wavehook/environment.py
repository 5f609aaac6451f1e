"""The environment variables each command reads, listed at the end of its ``--help``."""

from __future__ import annotations

import click

_LOGS = ("WAVEHOOK_LOG_FORMAT", "WAVEHOOK_LOG_LEVEL")
_LEDGER = ("WAVEHOOK_DB", "WAVEHOOK_BUSY_TIMEOUT_MS", "WAVEHOOK_TERMINAL_STATUSES", "WAVEHOOK_DB_POOL_SIZE")
_PROVIDER = (
    "WAVESPEED_API_KEY",
    "WAVESPEED_BASE_URL",
    "WAVEHOOK_CLIENT_NAME",
    "WAVEHOOK_CONNECT_TIMEOUT_SECONDS",
    "WAVEHOOK_READ_TIMEOUT_SECONDS",
    "WAVEHOOK_SUBMIT_RETRIES",
    "WAVEHOOK_SUBMIT_BACKOFF_SECONDS",
)
_SUBMIT = (
    *_PROVIDER,
    "WAVEHOOK_PUBLIC_URL",
    "WAVEHOOK_UPLOAD_MAX_BYTES",
    "WAVEHOOK_UNKNOWN_GRACE_SECONDS",
    "WAVEHOOK_ALLOW_EXTRA_INPUTS",
    "WAVEHOOK_CORRELATION_SECRET",
)
_HANDLERS = (
    "WAVEHOOK_HANDLERS",
    "WAVEHOOK_MEDIA_DIR",
    "WAVEHOOK_MEDIA_URL",
    "WAVEHOOK_DISPATCH_CONCURRENCY",
    "WAVEHOOK_DISPATCH_POLL_SECONDS",
    "WAVEHOOK_LEASE_SECONDS",
    "WAVEHOOK_MAX_ATTEMPTS",
    "WAVEHOOK_RETRY_BASE_SECONDS",
    "WAVEHOOK_RETRY_MAX_SECONDS",
    "WAVEHOOK_HANDLER_TIMEOUT_SECONDS",
    "WAVEHOOK_SHUTDOWN_GRACE_SECONDS",
    "WAVEHOOK_LOG_OUTCOMES",
    "WAVEHOOK_DOWNLOAD",
    "WAVEHOOK_DOWNLOAD_MAX_BYTES",
    "WAVEHOOK_DOWNLOAD_CONTENT_TYPES",
    "WAVEHOOK_DOWNLOAD_ALLOW_LOOPBACK",
    "WAVEHOOK_DOWNLOAD_ALLOW_PRIVATE",
    "WAVEHOOK_FORWARD_URL",
    "WAVEHOOK_FORWARD_SECRET",
)
_RECEIVE = (
    "WAVESPEED_WEBHOOK_SECRET",
    "WAVEHOOK_TOLERANCE_SECONDS",
    "WAVEHOOK_MAX_BODY_BYTES",
    "WAVEHOOK_ADMIN_TOKEN",
    "WAVEHOOK_DISPATCH_IN_WEB",
    "PROMETHEUS_MULTIPROC_DIR",
    "WAVEHOOK_CORRELATION_SECRET",
)
_RECONCILE = ("WAVEHOOK_RECONCILE_AFTER_SECONDS", "WAVEHOOK_RECONCILE_INTERVAL_SECONDS")
# How serve holds connections, and whom it serves without a token or trusts as a proxy.
_SERVE = (
    "WAVEHOOK_HEADER_TIMEOUT_SECONDS",
    "WAVEHOOK_BODY_TIMEOUT_SECONDS",
    "WAVEHOOK_KEEP_ALIVE_SECONDS",
    "WAVEHOOK_MAX_CONNECTIONS",
    "WAVEHOOK_MAX_HEADER_BYTES",
    "WAVEHOOK_ALLOW_NO_ADMIN_TOKEN",
    "WAVEHOOK_FORWARDED_ALLOW_IPS",
)

READS: dict[str, tuple[str, ...]] = {
    "serve": ("WAVEHOOK_HOST", "PORT", *_RECEIVE, *_SERVE, *_LEDGER, *_HANDLERS, *_LOGS),
    "worker": (*_LEDGER, *_HANDLERS, *_PROVIDER, *_RECONCILE, *_LOGS),
    "verify": ("WAVESPEED_WEBHOOK_SECRET",),
    "doctor": (*_RECEIVE, "WAVEHOOK_PUBLIC_URL", "WAVESPEED_BASE_URL", *_LEDGER, *_HANDLERS, *_LOGS),
    "replay": (*_LEDGER, *_LOGS),
    "runs": (*_LEDGER, *_LOGS),
    "models": (),
    "submit": (*_SUBMIT, *_LEDGER, "WAVEHOOK_WAIT_FALLBACK_SECONDS", "WAVEHOOK_ADMIN_TOKEN", *_LOGS),
    "batch": (*_SUBMIT, *_LEDGER, *_LOGS),
    "status": (*_PROVIDER, *_LEDGER, *_LOGS),
    "list": (*_LEDGER, *_LOGS),
    "secret": _PROVIDER,
    "reconcile": (*_PROVIDER, *_LEDGER, *_RECONCILE, "WAVEHOOK_UNKNOWN_GRACE_SECONDS", *_LOGS),
    "sandbox": ("WAVESPEED_WEBHOOK_SECRET", *_LOGS),
    "ledger": ("WAVEHOOK_BUSY_TIMEOUT_MS", *_LOGS),
    "demo": (),
}


def with_environment(name: str, command: click.Command) -> click.Command:
    """``command`` with the variables it reads listed at the end of its help (once)."""
    names = READS.get(name, ())
    if command.epilog is None:
        command.epilog = (
            "Environment: " + ", ".join(names) + "." if names else "Environment: none of wavehook's variables."
        )
    return command
