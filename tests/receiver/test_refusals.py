"""Refused deliveries: counted in memory by reason, shown by /api/summary, never written per unsigned request."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from receiver.refusals import Refusals, explain
from receiver.settings import Settings
from tests.integration.receiver_client import query
from tests.receiver.web_support import NOW, web_client
from tests.support import prediction_body, signed_headers

URL = "/webhooks/wavespeed"
OTHER = "whsec_c29tZS1vdGhlci1hY2NvdW50cy1zZWNyZXQ="


def db_changes(client: TestClient) -> int:
    """Rows the ledger holds in every table a delivery could touch."""
    db = client.app.state.receiver.settings.db  # type: ignore[attr-defined]
    tables = ("events", "predictions", "handler_runs", "quarantine")
    return sum(int(query(db, f"SELECT count(*) FROM {table}")[0][0]) for table in tables)  # noqa: S608 (fixed names)


@pytest.fixture
def client(backend: str, settings_factory: Callable[..., Settings]) -> Iterator[TestClient]:
    """An in-process receiver on a ledger of each backend in turn."""
    with web_client(settings_factory(), clock=lambda: NOW) as test_client:
        yield test_client


def test_wrong_secret_is_counted_in_summary_without_a_write(client: TestClient) -> None:
    """Deliveries signed with another secret show in refused_deliveries with count, last time and last id."""
    before = db_changes(client)
    for n in range(3):
        body = prediction_body(f"p{n}")
        response = client.post(
            URL, content=body, headers=signed_headers(OTHER, body, webhook_id=f"w{n}", timestamp=int(NOW))
        )
        assert response.status_code == 401
    client.post(URL, content=b"{}", headers={"webhook-id": "probe"})
    refused = client.get("/api/summary").json()["refused_deliveries"]
    assert refused == {
        "missing_header": {"count": 1, "last_at": NOW, "last_webhook_id": "probe"},
        "signature_mismatch": {"count": 3, "last_at": NOW, "last_webhook_id": "w2"},
    }
    assert db_changes(client) == before


def test_summary_without_refusals_is_an_empty_mapping(client: TestClient, secret: str) -> None:
    """An accepted delivery is not a refusal."""
    body = prediction_body("p1")
    assert client.post(
        URL, content=body, headers=signed_headers(secret, body, webhook_id="w1", timestamp=int(NOW))
    ).is_success
    assert client.get("/api/summary").json()["refused_deliveries"] == {}


def test_token_mismatch_is_quarantined_and_counted(client: TestClient, secret: str) -> None:
    """A signed delivery whose correlation token is wrong is kept in quarantine under its prediction id."""
    body = prediction_body("p7")
    headers = signed_headers(secret, body, webhook_id="w7", timestamp=int(NOW))
    response = client.post(f"{URL}?ref=job-1&token={'0' * 32}", content=body, headers=headers)
    assert (response.status_code, response.json()["reason"]) == (401, "token_mismatch")
    db = client.app.state.receiver.settings.db  # type: ignore[attr-defined]
    rows = query(db, "SELECT webhook_id, reason, prediction_id FROM quarantine")
    assert (rows, query(db, "SELECT count(*) FROM events")) == ([("w7", "token_mismatch", "p7")], [(0,)])
    assert client.get("/api/summary").json()["refused_deliveries"]["token_mismatch"]["count"] == 1


def test_loud_reasons_warn_once_per_interval() -> None:
    """signature_mismatch warns at first, then at most once per interval, saying how many it stayed quiet on."""
    now = [1000.0]
    refusals = Refusals(clock=lambda: now[0], warn_interval=60)
    with capture_logs() as logs:
        for _ in range(5):
            refusals.record("signature_mismatch", "w")
        now[0] += 61
        refusals.record("signature_mismatch", "w9")
        refusals.record("missing_header", None)  # noise from the internet: never a warning
    warnings = [line for line in logs if line["log_level"] == "warning"]
    assert [(w["reason"], w["since_last_warning"], w["webhook_id"]) for w in warnings] == [
        ("signature_mismatch", 1, "w"),
        ("signature_mismatch", 5, "w9"),
    ]
    assert "WAVESPEED_WEBHOOK_SECRET" in warnings[0]["hint"]


def test_long_webhook_ids_are_cut_and_every_reason_is_explained() -> None:
    """What an unsigned request sends is kept only up to 256 characters; each reason has advice."""
    refusals = Refusals(clock=lambda: 1.0)
    refusals.record("malformed_header", "x" * 10_000)
    assert len(str(refusals.as_json()["malformed_header"]["last_webhook_id"])) == 256
    assert "WAVEHOOK_DB" in explain("token_mismatch")
    assert "clock" in explain("stale_timestamp")
    assert explain("something_new")
