"""Every named bad input of ``tests/receiver/bad_inputs.py`` gets its answer, and nothing unsigned is stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx2
import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from receiver.correlation import make_token
from receiver.http.app import create_app
from receiver.settings import Settings
from tests.conftest import SECRET
from tests.receiver.bad_inputs import CASES, NOW, REF, Case, Sent, markdown_table
from tests.support import ROOT, direct

# Runs on every ledger backend (SQLite, PostgreSQL): see ``settings_factory``.
pytestmark = pytest.mark.usefixtures("backend")

DOC = ROOT / "docs" / "bad-inputs.md"


@pytest.fixture
def client(settings_factory: Callable[..., Settings]) -> Iterator[TestClient]:
    """The receiver in process, on a fixed clock, over a fresh ledger."""
    app = create_app(settings_factory(), clock=lambda: float(NOW))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def send(client: TestClient, sent: Sent) -> httpx2.Response:
    """POST (or whatever ``sent.method`` says) exactly these headers and bytes to the webhook route."""
    query = sent.query
    if "{token}" in query:
        query = query.replace("{token}", make_token(correlation_secret(client), REF))
    url = "/webhooks/wavespeed" + (f"?{query}" if query else "")
    content = iter([sent.body]) if sent.chunked else sent.body
    raw = [
        (name.encode(), value if isinstance(value, bytes) else value.encode()) for name, value in sent.headers.items()
    ]
    return client.request(sent.method, url, content=content, headers=raw)


def db_of(client: TestClient) -> str:
    settings: Settings = client.app.state.receiver.settings  # type: ignore[attr-defined]
    return settings.db


def correlation_secret(client: TestClient) -> str:
    secret: str = client.app.state.receiver.correlation_secret  # type: ignore[attr-defined]
    return secret


def ledger(db: str) -> dict[str, object]:
    """What the ledger holds: counts of events, predictions and runs, and the quarantine's reasons."""
    with direct(db) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 (fixed names)
            for table in ("events", "predictions", "handler_runs")
        }
        quarantine = sorted(row[0] for row in conn.execute("SELECT reason FROM quarantine"))
    conn.close()
    return {**counts, "quarantine": quarantine}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_its_answer(client: TestClient, case: Case) -> None:
    """The case's status and reason, an error naming what is wrong, and only signed, fresh deliveries stored."""
    with capture_logs() as logs:
        response = send(client, case.sent)
    assert (response.status_code, response.json().get("reason", "accepted")) == (case.status, case.reason)
    assert SECRET.removeprefix("whsec_") not in response.text
    stored = ledger(db_of(client))
    if case.status == 200:
        assert response.json() == {"received": True, "duplicate": False}
        assert stored == {"events": 1, "predictions": 1, "handler_runs": 0, "quarantine": []}
    else:
        assert case.mentions in response.json()["error"]
        expected = [case.quarantine] if case.quarantine else []
        assert stored == {"events": 0, "predictions": 0, "handler_runs": 0, "quarantine": expected}
    lines = [line for line in logs if line["event"] in {"webhook_received", "webhook_rejected"}]
    if case.status != 405:  # the router refuses other methods before the endpoint runs
        assert len(lines) == 1, lines  # one canonical line per delivery
        assert lines[0].get("reason", "accepted") == case.reason


def test_table_names_thirty_distinct_cases() -> None:
    """The table holds at least thirty bad inputs, each with its own name."""
    names = [case.name for case in CASES]
    assert len(names) >= 30
    assert len(set(names)) == len(names)


def test_doc_table_is_the_test_table() -> None:
    """docs/bad-inputs.md shows exactly the table the tests run, so the two cannot drift apart."""
    assert markdown_table() in DOC.read_text(encoding="utf-8"), (
        "docs/bad-inputs.md is out of date: regenerate its table with `.venv/bin/python -m tests.receiver.bad_inputs`"
    )
