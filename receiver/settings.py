"""Configuration: one frozen dataclass, built once from the environment in the entry point."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from pathlib import Path

from receiver.errors import ConfigError
from receiver.statuses import TERMINAL_STATUSES

DEFAULT_BASE_URL = "https://api.wavespeed.ai"
DEFAULT_MAX_BODY = 1024 * 1024
SECRET_HELP = (
    "WAVESPEED_WEBHOOK_SECRET is not set, and webhooks that cannot be verified are never accepted.\n"
    "Get your account's signing secret (it starts with whsec_) with `wavehook secret` (WAVESPEED_API_KEY set),\n"
    "or from the provider's GET /api/v3/webhook/secret:\n"
    f'  curl -s -H "Authorization: Bearer $WAVESPEED_API_KEY" {DEFAULT_BASE_URL}/api/v3/webhook/secret\n'
    "then export WAVESPEED_WEBHOOK_SECRET=whsec_...; while rotating, give the old and the new one comma-separated."
)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# The standard AWS variables an S3-compatible media store is configured by (AWS_ALLOW_HTTP: plain http to a
# local MinIO or test server). The client also finds container and instance credentials by itself.
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP",
)
MIN_ADMIN_TOKEN = 24
TOKEN_HELP = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class Secret:
    """A string that never shows itself in ``repr()``, ``str()`` or a log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _int(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum of {minimum}")
    return value


def _float(environ: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum of {minimum}")
    return value


def _list(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in environ.get(name, "").split(",") if part.strip())


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = environ.get(name, "").strip().lower() or default
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true/false)")


def _forward_secret(environ: Mapping[str, str], url: str | None) -> Secret | None:
    raw = environ.get("WAVEHOOK_FORWARD_SECRET", "").strip()
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"WAVEHOOK_FORWARD_URL={url!r} must be an http:// or https:// URL")
    if not raw:
        if url:
            raise ConfigError("WAVEHOOK_FORWARD_URL is set but WAVEHOOK_FORWARD_SECRET is not (a whsec_ base64 key)")
        return None
    try:
        key = base64.b64decode(raw.removeprefix("whsec_"), validate=True)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ConfigError("WAVEHOOK_FORWARD_SECRET must be base64 (optionally whsec_-prefixed) of at least 16 bytes")
    return Secret(raw)


def _media_url(environ: Mapping[str, str]) -> str | None:
    raw = environ.get("WAVEHOOK_MEDIA_URL", "").strip().rstrip("/")
    if not raw:
        return None
    scheme, _, rest = raw.partition("://")
    if scheme.lower() != "s3" or not rest.split("/", 1)[0]:
        raise ConfigError(
            f"WAVEHOOK_MEDIA_URL={raw!r} is not an s3://bucket/prefix URL "
            "(leave it unset to keep outputs in the local WAVEHOOK_MEDIA_DIR)"
        )
    return f"s3://{rest}"


def _port(environ: Mapping[str, str]) -> int:
    port = _int(environ, "PORT", 8000, minimum=1)
    if port > 65535:
        raise ConfigError(f"PORT={port} is not a TCP port (1-65535)")
    return port


@dataclasses.dataclass(frozen=True)
class DispatchSettings:
    """How handler runs are leased, retried and timed out, and which built-in handlers are on."""

    lease_seconds: float = 30.0
    max_attempts: int = 5
    retry_base_seconds: float = 10.0
    retry_max_seconds: float = 3600.0
    handler_timeout_seconds: float = 300.0
    concurrency: int = 8
    poll_seconds: float = 1.0
    shutdown_grace_seconds: float = 10.0
    log_outcomes: bool = True
    download: bool = True
    download_max_bytes: int = 2 * 1024**3
    download_content_types: tuple[str, ...] = ("video/*", "image/*", "audio/*", "application/octet-stream")
    download_allow_loopback: bool = False
    download_allow_private: bool = False
    forward_url: str | None = None
    forward_secret: Secret | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DispatchSettings:
        base = _float(environ, "WAVEHOOK_RETRY_BASE_SECONDS", cls.retry_base_seconds, minimum=0.01)
        cap = _float(environ, "WAVEHOOK_RETRY_MAX_SECONDS", max(cls.retry_max_seconds, base), minimum=base)
        forward_url = environ.get("WAVEHOOK_FORWARD_URL", "").strip() or None
        return cls(
            lease_seconds=_float(environ, "WAVEHOOK_LEASE_SECONDS", cls.lease_seconds, minimum=0.5),
            max_attempts=_int(environ, "WAVEHOOK_MAX_ATTEMPTS", cls.max_attempts, minimum=1),
            retry_base_seconds=base,
            retry_max_seconds=cap,
            handler_timeout_seconds=_float(
                environ, "WAVEHOOK_HANDLER_TIMEOUT_SECONDS", cls.handler_timeout_seconds, minimum=0.01
            ),
            concurrency=_int(environ, "WAVEHOOK_DISPATCH_CONCURRENCY", cls.concurrency, minimum=1),
            poll_seconds=_float(environ, "WAVEHOOK_DISPATCH_POLL_SECONDS", cls.poll_seconds, minimum=0.01),
            shutdown_grace_seconds=_float(environ, "WAVEHOOK_SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds),
            log_outcomes=_bool(environ, "WAVEHOOK_LOG_OUTCOMES", cls.log_outcomes),
            download=_bool(environ, "WAVEHOOK_DOWNLOAD", cls.download),
            download_max_bytes=_int(environ, "WAVEHOOK_DOWNLOAD_MAX_BYTES", cls.download_max_bytes, minimum=1),
            download_content_types=_list(environ, "WAVEHOOK_DOWNLOAD_CONTENT_TYPES") or cls.download_content_types,
            download_allow_loopback=_bool(environ, "WAVEHOOK_DOWNLOAD_ALLOW_LOOPBACK", False),
            download_allow_private=_bool(environ, "WAVEHOOK_DOWNLOAD_ALLOW_PRIVATE", False),
            forward_url=forward_url,
            forward_secret=_forward_secret(environ, forward_url),
        )


@dataclasses.dataclass(frozen=True)
class SubmitSettings:
    """How the submitter talks to the provider, uploads files, resolves doubtful submits and reconciles."""

    client_name: str = "wavehook"
    connect_timeout_seconds: float = 10.0
    # A read timeout on a submit is an ambiguous outcome (the task may exist): give it headroom.
    read_timeout_seconds: float = 60.0
    retries: int = 4
    backoff_seconds: float = 0.5
    upload_max_bytes: int = 200 * 1024**2
    reconcile_after_seconds: float = 600.0
    reconcile_interval_seconds: float = 300.0
    unknown_grace_seconds: float = 120.0
    wait_fallback_seconds: float = 120.0
    # Inputs a model's page does not list: refused (False) or sent as given (True, or --allow-extra).
    allow_extra_inputs: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SubmitSettings:
        return cls(
            client_name=environ.get("WAVEHOOK_CLIENT_NAME", "").strip() or cls.client_name,
            connect_timeout_seconds=_float(environ, "WAVEHOOK_CONNECT_TIMEOUT_SECONDS", 10.0, minimum=0.01),
            read_timeout_seconds=_float(environ, "WAVEHOOK_READ_TIMEOUT_SECONDS", 60.0, minimum=0.01),
            retries=_int(environ, "WAVEHOOK_SUBMIT_RETRIES", cls.retries),
            backoff_seconds=_float(environ, "WAVEHOOK_SUBMIT_BACKOFF_SECONDS", cls.backoff_seconds),
            upload_max_bytes=_int(environ, "WAVEHOOK_UPLOAD_MAX_BYTES", cls.upload_max_bytes, minimum=1),
            reconcile_after_seconds=_float(environ, "WAVEHOOK_RECONCILE_AFTER_SECONDS", 600.0),
            reconcile_interval_seconds=_float(environ, "WAVEHOOK_RECONCILE_INTERVAL_SECONDS", 300.0, minimum=1.0),
            unknown_grace_seconds=_float(environ, "WAVEHOOK_UNKNOWN_GRACE_SECONDS", 120.0),
            wait_fallback_seconds=_float(environ, "WAVEHOOK_WAIT_FALLBACK_SECONDS", 120.0),
            allow_extra_inputs=_bool(environ, "WAVEHOOK_ALLOW_EXTRA_INPUTS", False),
        )


@dataclasses.dataclass(frozen=True)
class ConnectionSettings:
    """How long ``serve`` waits for each part of a request, and how many connections it holds at once."""

    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    keep_alive_seconds: int = 5
    max_connections: int = 1000
    max_header_bytes: int = 65536

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ConnectionSettings:
        return cls(
            header_timeout_seconds=_float(environ, "WAVEHOOK_HEADER_TIMEOUT_SECONDS", 10.0, minimum=0.1),
            body_timeout_seconds=_float(environ, "WAVEHOOK_BODY_TIMEOUT_SECONDS", 30.0, minimum=0.1),
            keep_alive_seconds=_int(environ, "WAVEHOOK_KEEP_ALIVE_SECONDS", 5, minimum=1),
            max_connections=_int(environ, "WAVEHOOK_MAX_CONNECTIONS", 1000, minimum=1),
            max_header_bytes=_int(environ, "WAVEHOOK_MAX_HEADER_BYTES", 65536, minimum=4096),
        )


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting wavehook reads. ``from_env`` reads them from the environment, once per process (the
    command line's bootstrap, or ``create_app_from_env`` in each worker process); click options that name an
    environment variable (``verify --secret``, ``sandbox --secret``) are the other readers."""

    webhook_secrets: tuple[Secret, ...] = ()
    api_key: Secret | None = None
    base_url: str = DEFAULT_BASE_URL
    # WAVEHOOK_DB as given: a SQLite file path, or a postgresql:// URL (kept out of repr: it may hold a password).
    db: str = dataclasses.field(default="wavehook.db", repr=False)
    # Connections each process keeps to a PostgreSQL ledger (unused with SQLite).
    db_pool_size: int = 10
    # WAVEHOOK_CORRELATION_SECRET: tokens are made with the first and accepted with any (and the ledger's own).
    correlation_secrets: tuple[Secret, ...] = ()
    public_url: str | None = None
    media_dir: Path = Path("media")
    # s3://bucket/prefix: outputs go to S3-compatible object storage instead of media_dir
    media_url: str | None = None
    aws: tuple[tuple[str, Secret], ...] = ()  # the AWS_VARIABLES that are set, each value masked
    handler_modules: tuple[str, ...] = ()
    admin_token: Secret | None = None
    # Start on a non-loopback interface without an admin token (the dashboard then answers loopback clients only).
    allow_no_admin_token: bool = False
    # Peers whose X-Forwarded-For/-Proto uvicorn believes (a proxy's address; "*" when only the proxy can connect).
    forwarded_allow_ips: str = "127.0.0.1"
    tolerance_seconds: int = 300
    max_body_bytes: int = DEFAULT_MAX_BODY
    busy_timeout_ms: int = 5000
    log_format: str = "auto"
    log_level: str = "info"
    # Anything else the provider may invent is stored but not treated as final.
    terminal_statuses: tuple[str, ...] = TERMINAL_STATUSES
    dispatch_in_web: bool = True
    dispatch: DispatchSettings = DispatchSettings()
    submit: SubmitSettings = SubmitSettings()
    # Where `serve` listens when --host/--port are not given: PORT is what container platforms set.
    host: str = "127.0.0.1"
    port: int = 8000
    connections: ConnectionSettings = ConnectionSettings()
    # prometheus-client's multiprocess directory; `serve --workers N` sets it for its workers.
    metrics_dir: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        log_format = _choice(environ, "WAVEHOOK_LOG_FORMAT", ("auto", "json", "console"), "auto")
        api_key = environ.get("WAVESPEED_API_KEY", "").strip()
        admin_token = environ.get("WAVEHOOK_ADMIN_TOKEN", "").strip()
        if admin_token and len(admin_token) < MIN_ADMIN_TOKEN:
            raise ConfigError(
                f"WAVEHOOK_ADMIN_TOKEN is {len(admin_token)} characters long; it must be at least {MIN_ADMIN_TOKEN} "
                f"characters (a short token can be guessed, and it opens the dashboard and API); {TOKEN_HELP}"
            )
        terminal = _list(environ, "WAVEHOOK_TERMINAL_STATUSES") or cls.terminal_statuses
        return cls(
            webhook_secrets=tuple(Secret(s) for s in _list(environ, "WAVESPEED_WEBHOOK_SECRET")),
            api_key=Secret(api_key) if api_key else None,
            base_url=environ.get("WAVESPEED_BASE_URL", "").strip().rstrip("/") or DEFAULT_BASE_URL,
            db=environ.get("WAVEHOOK_DB", "").strip() or "wavehook.db",
            db_pool_size=_int(environ, "WAVEHOOK_DB_POOL_SIZE", 10, minimum=1),
            correlation_secrets=tuple(Secret(s) for s in _list(environ, "WAVEHOOK_CORRELATION_SECRET")),
            public_url=environ.get("WAVEHOOK_PUBLIC_URL", "").strip().rstrip("/") or None,
            media_dir=Path(environ.get("WAVEHOOK_MEDIA_DIR", "").strip() or "media"),
            media_url=_media_url(environ),
            aws=tuple((name, Secret(environ[name].strip())) for name in AWS_VARIABLES if environ.get(name, "").strip()),
            handler_modules=_list(environ, "WAVEHOOK_HANDLERS"),
            admin_token=Secret(admin_token) if admin_token else None,
            allow_no_admin_token=_bool(environ, "WAVEHOOK_ALLOW_NO_ADMIN_TOKEN", False),
            forwarded_allow_ips=environ.get("WAVEHOOK_FORWARDED_ALLOW_IPS", "").strip() or "127.0.0.1",
            tolerance_seconds=_int(environ, "WAVEHOOK_TOLERANCE_SECONDS", 300, minimum=1),
            max_body_bytes=_int(environ, "WAVEHOOK_MAX_BODY_BYTES", DEFAULT_MAX_BODY, minimum=1024),
            busy_timeout_ms=_int(environ, "WAVEHOOK_BUSY_TIMEOUT_MS", 5000, minimum=0),
            log_format=log_format,
            log_level=_choice(environ, "WAVEHOOK_LOG_LEVEL", LOG_LEVELS, "info"),
            terminal_statuses=terminal,
            dispatch_in_web=_bool(environ, "WAVEHOOK_DISPATCH_IN_WEB", True),
            dispatch=DispatchSettings.from_env(environ),
            submit=SubmitSettings.from_env(environ),
            host=environ.get("WAVEHOOK_HOST", "").strip() or cls.host,
            port=_port(environ),
            connections=ConnectionSettings.from_env(environ),
            metrics_dir=Path(environ["PROMETHEUS_MULTIPROC_DIR"]) if environ.get("PROMETHEUS_MULTIPROC_DIR") else None,
        )

    @property
    def db_path(self) -> Path:
        """The SQLite ledger file WAVEHOOK_DB names."""
        return Path(self.db)

    def require_secrets(self) -> tuple[Secret, ...]:
        if not self.webhook_secrets:
            raise ConfigError(SECRET_HELP)
        return self.webhook_secrets

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


__all__ = ["ConnectionSettings", "DispatchSettings", "Secret", "Settings", "SubmitSettings"]
