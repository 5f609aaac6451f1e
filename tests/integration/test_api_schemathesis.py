"""schemathesis against a real ``wavehook serve``: every JSON API operation, fed generated parameters, answers
no 5xx, and every answer (status, content type, headers, body) matches ``/openapi.json``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from receiver.http.openapi import SPEC
from tests.integration.receiver_client import Delivery, Server, post, serve
from tests.support import prediction_body

pytestmark = pytest.mark.integration
TOKEN = "schemathesis-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A served app whose ledger holds a few predictions of every kind the listings show."""
    with serve(tmp_path_factory.mktemp("schemathesis"), env={"WAVEHOOK_ADMIN_TOKEN": TOKEN}) as server:
        with httpx.Client(timeout=10) as client:
            for index, status in enumerate(["completed", "failed", "processing", "completed"]):
                body = prediction_body(f"st-{index}", status)
                assert post(client, server.url, Delivery(f"st-{index}", body)).status_code == 200
            odd = json.dumps({"id": "st-odd", "status": "completed", "outputs": 5}).encode()
            assert post(client, server.url, Delivery("st-odd", odd)).status_code == 400
        yield server


@pytest.fixture(scope="module")
def api_schema(api: Server) -> schemathesis.BaseSchema:
    """The description as the served app publishes it (loaded with the bearer token it requires)."""
    return schemathesis.openapi.from_url(f"{api.url}/openapi.json", headers=AUTH)


OPERATIONS = [(method, path) for path, item in SPEC["paths"].items() for method in item]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m.upper()} {p}" for m, p in OPERATIONS])
def test_every_answer_matches_the_description(
    api: Server, api_schema: schemathesis.BaseSchema, method: str, path: str
) -> None:
    """No 5xx, and each answer's status, content type, headers and body are as /openapi.json describes."""
    operation = api_schema[path][method]

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy())
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=api.url, headers=AUTH, checks=CHECKS)

    check()
