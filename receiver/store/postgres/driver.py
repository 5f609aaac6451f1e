"""The PostgreSQL driver is an optional extra: a clear message, not an ImportError, when it is missing."""

from __future__ import annotations

from receiver.errors import ConfigError

INSTALL_HINT = "pip install 'wavehook[postgres]'  (psycopg 3 and psycopg_pool)"


def require_driver() -> None:
    """Raise ConfigError naming what to install when psycopg or psycopg_pool is not importable."""
    missing = []
    for module in ("psycopg", "psycopg_pool"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ConfigError(
            f"WAVEHOOK_DB is a PostgreSQL URL, but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed: {INSTALL_HINT}"
        )
