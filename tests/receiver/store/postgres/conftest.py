"""The PostgreSQL ledger's own tests run their coroutines on asyncio (psycopg's async side needs it)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
