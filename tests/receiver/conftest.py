"""Fixtures of the receiver's unit tests: a fresh, migrated ledger file; in-process apps with a pinned clock."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from receiver.http.app import create_app
from receiver.settings import Settings
from receiver.store.connection import connect, open_database


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


NOW = 1_800_000_000


@pytest.fixture
def app_client(settings_factory: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """In-process clients of ``create_app`` with the clock pinned to ``NOW``; each is closed afterwards."""
    with contextlib.ExitStack() as stack:
        yield lambda **overrides: stack.enter_context(
            TestClient(create_app(settings_factory(**overrides), clock=lambda: NOW))
        )
