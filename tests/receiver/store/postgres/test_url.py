"""PostgreSQL URLs: told apart from SQLite paths, shown only with the password masked; a missing driver is
named with what to install."""

from __future__ import annotations

import sys

import pytest

from receiver.errors import ConfigError
from receiver.store.ledger import is_postgres_url
from receiver.store.postgres.driver import require_driver
from receiver.store.postgres.url import masked


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("postgresql://u:p@db/ledger", True),
        ("postgres://u@db/ledger", True),
        ("POSTGRESQL://db/ledger", True),
        ("wavehook.db", False),
        ("/var/lib/wavehook/ledger.db", False),
        ("postgresql.db", False),
    ],
)
def test_postgres_urls_are_told_from_paths(value: str, expected: bool) -> None:
    """Only the postgresql:// and postgres:// schemes mean PostgreSQL; anything else is a SQLite path."""
    assert is_postgres_url(value) is expected


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cr%40t@db.internal:5432/ledger", "postgresql://app:***@db.internal:5432/ledger"),
        ("postgres://app@db/ledger?sslmode=require", "postgres://app@db/ledger?sslmode=require"),
        ("postgresql:///ledger?host=/run/pg&password=hunter2", "postgresql:///ledger?host=/run/pg&password=***"),
        ("postgresql://db/ledger", "postgresql://db/ledger"),
    ],
)
def test_masked_url_never_shows_a_password(url: str, shown: str) -> None:
    """The password, in the authority or the query, is replaced by ***; the rest stays for diagnosis."""
    assert masked(url) == shown


def test_missing_driver_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg_pool, a PostgreSQL URL is refused with the pip command that fixes it."""
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    with pytest.raises(ConfigError, match=r"psycopg_pool is not installed: pip install 'wavehook\[postgres\]'"):
        require_driver()
