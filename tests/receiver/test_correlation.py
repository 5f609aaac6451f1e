"""Correlation tokens: made from the ledger's secret, checked on delivery, never shown back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from httpx import Response
from starlette.testclient import TestClient

from receiver import correlation
from receiver.errors import BadRequest, TokenMismatch
from tests.conftest import SECRET
from tests.integration.receiver_client import query
from tests.receiver.conftest import NOW
from tests.receiver.web_support import ledger_call
from tests.support import prediction_body, signed_headers

MODEL = "bytedance/seedance-v1-lite-t2v-480p"


def test_a_token_made_for_a_reference_is_accepted() -> None:
    """check() returns the reference when its token was made with the same secret."""
    token = correlation.make_token("s3cret", "wh_1")
    assert correlation.check("s3cret", "wh_1", token) == "wh_1"


def test_a_token_for_another_reference_or_secret_is_refused() -> None:
    """A token made for another reference, or with another secret, is a mismatch."""
    with pytest.raises(TokenMismatch):
        correlation.check("s3cret", "wh_2", correlation.make_token("s3cret", "wh_1"))
    with pytest.raises(TokenMismatch):
        correlation.check("s3cret", "wh_1", correlation.make_token("other", "wh_1"))


def test_a_token_without_its_reference_is_a_bad_request() -> None:
    """A token alone names no job: the answer says the ref parameter is missing."""
    with pytest.raises(BadRequest, match="ref"):
        correlation.check("s3cret", None, "abc")


def test_redact_masks_only_the_token() -> None:
    """redact() keeps the URL and every other parameter, and masks the token."""
    url = "https://h.example/hook?x=1&ref=wh_1&token=abc123"
    assert correlation.redact(url) == "https://h.example/hook?x=1&ref=wh_1&token=[redacted]"
    assert correlation.redact("https://h.example/hook") == "https://h.example/hook"


def _submitted(client: TestClient, reference: str, prediction_id: str) -> str:
    """Record a job as the submitter does (its submission, then the provider's task id); its correct token."""
    ledger_call(
        client,
        "begin_submission",
        reference=reference,
        job_key=None,
        model=MODEL,
        input_json="{}",
        webhook_url=None,
        now=NOW,
    )
    ledger_call(
        client,
        "record_submitted",
        reference=reference,
        prediction={"id": prediction_id, "status": "created"},
        resolved_by="submit",
        now=NOW,
    )
    return correlation.make_token(_secret(client), reference)


def _secret(client: TestClient) -> str:
    secret: str = client.app.state.receiver.correlation_secret  # type: ignore[attr-defined]
    return secret


def _deliver(client: TestClient, prediction_id: str, query: str, webhook_id: str) -> Response:
    body = prediction_body(prediction_id, "completed", model=MODEL)
    headers = signed_headers(SECRET, body, webhook_id=webhook_id, timestamp=NOW)
    return client.post(f"/webhooks/wavespeed{query}", content=body, headers=headers)


def _ledger(client: TestClient, sql: str) -> list[tuple[object, ...]]:
    return query(client.app.state.receiver.settings.db, sql)  # type: ignore[attr-defined]


@pytest.mark.usefixtures("backend")  # each ledger backend in turn
def test_a_delivery_for_our_job_without_its_token_is_refused_and_quarantined(
    app_client: Callable[..., TestClient],
) -> None:
    """Signed with the provider secret but sent without our job's ref and token: 401, kept, nothing applied."""
    client = app_client()
    _submitted(client, "job-1", "task-1")
    response = _deliver(client, "task-1", "", "forged-1")
    assert (response.status_code, response.json()["reason"]) == (401, "token_mismatch")
    assert "ref" in response.json()["error"]
    assert _ledger(client, "SELECT status FROM predictions") == [("created",)]
    assert _ledger(client, "SELECT count(*) FROM events") == [(0,)]
    assert _ledger(client, "SELECT reason, prediction_id FROM quarantine") == [("token_mismatch", "task-1")]


@pytest.mark.usefixtures("backend")  # each ledger backend in turn
def test_a_delivery_for_one_job_with_another_jobs_ref_and_token_is_refused(
    app_client: Callable[..., TestClient],
) -> None:
    """Job 1's genuine ref and token do not vouch for job 2 (known or not yet known to the ledger)."""
    client = app_client()
    token_1 = _submitted(client, "job-1", "task-1")
    _submitted(client, "job-2", "task-2")
    for target in ("task-2", "task-3"):
        response = _deliver(client, target, f"?ref=job-1&token={token_1}", f"forged-{target}")
        assert (response.status_code, response.json()["reason"]) == (401, "token_mismatch"), target
    assert _ledger(client, "SELECT id, status FROM predictions ORDER BY id") == [
        ("task-1", "created"),
        ("task-2", "created"),
    ]
    assert _ledger(client, "SELECT count(*) FROM events") == [(0,)]
    assert _ledger(client, "SELECT reason FROM quarantine") == [("token_mismatch",), ("token_mismatch",)]


@pytest.mark.usefixtures("backend")  # each ledger backend in turn
def test_the_right_ref_and_token_and_foreign_jobs_are_still_accepted(app_client: Callable[..., TestClient]) -> None:
    """Our job with its own ref and token is applied; a job the ledger holds no reference for needs none."""
    client = app_client()
    token = _submitted(client, "job-1", "task-1")
    assert _deliver(client, "task-1", f"?ref=job-1&token={token}", "genuine").status_code == 200
    assert _deliver(client, "other-tool-task", "", "foreign").status_code == 200
    # A webhook that arrives before the submit answer is recorded carries an unclaimed ref: accepted.
    early = correlation.make_token(_secret(client), "job-9")
    assert _deliver(client, "task-9", f"?ref=job-9&token={early}", "early").status_code == 200
    assert _ledger(client, "SELECT id, status, reference FROM predictions ORDER BY id") == [
        ("other-tool-task", "completed", None),
        ("task-1", "completed", "job-1"),
        ("task-9", "completed", "job-9"),
    ]
