"""Fixtures of the receiver's unit tests: a fresh, migrated ledger file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from receiver.store import connect, open_database


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A migrated ledger file in the test's own directory."""
    path = tmp_path / "ledger.db"
    open_database(path)
    return path


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A write connection to a fresh ledger, closed afterwards."""
    connection = connect(db_path)
    yield connection
    connection.close()
