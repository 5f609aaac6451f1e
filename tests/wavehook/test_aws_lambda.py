"""The AWS Lambda handler, invoked in process with API Gateway HTTP API (v2) events carrying real signed
deliveries: accepted, duplicate, refused and too large, each answered as ``wavehook serve`` answers it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from receiver.settings import Settings
from tests.integration.dispatch_support import query
from tests.support import prediction_body, signed_headers
from wavehook.aws_lambda import LambdaHandler, make_handler


def http_api_event(
    method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None, binary: bool = False
) -> dict[str, Any]:
    """An API Gateway HTTP API payload (format 2.0), as Lambda receives it."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "abc123.execute-api.eu-west-1.amazonaws.com", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "WaveSpeed-Webhook/1.0",
            },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "30/Nov/2026:05:00:00 +0000",
            "timeEpoch": 1_800_000_000_000,
        },
        "body": base64.b64encode(body).decode() if binary else body.decode(),
        "isBase64Encoded": binary,
    }


class _Context:
    function_name = "wavehook"
    aws_request_id = "req-1"


@pytest.fixture
def lambda_handler(ledger_settings: Callable[..., Settings]) -> Iterator[LambdaHandler]:
    """The handler on a fresh ledger of each backend in turn (SQLite, the test suite's PostgreSQL)."""
    handler = make_handler(ledger_settings(max_body_bytes=4096))
    yield handler
    handler.close()


def _delivery(secret: str, prediction_id: str, webhook_id: str, *, binary: bool = False) -> dict[str, Any]:
    body = prediction_body(prediction_id, "completed", outputs=["https://cdn.example.com/x.mp4"])
    headers = {"content-type": "application/json", **signed_headers(secret, body, webhook_id=webhook_id)}
    return http_api_event("POST", "/webhooks/wavespeed", body=body, headers=headers, binary=binary)


def test_signed_deliveries_through_api_gateway_v2(
    lambda_handler: LambdaHandler, secret: str, ledger_settings: Callable[..., Settings]
) -> None:
    """Accepted (text and base64 bodies), duplicate, refused and 413, with the receiver's own answers; the
    ledger holds each accepted delivery once with its handler runs pending (nothing runs in the function),
    and the lifespan opened the ledger once for all the invocations."""
    db = ledger_settings().db
    with capture_logs() as logs:
        accepted = lambda_handler(_delivery(secret, "p1", "w1"), _Context())
        duplicate = lambda_handler(_delivery(secret, "p1", "w1"), _Context())
        binary = lambda_handler(_delivery(secret, "p2", "w2", binary=True), _Context())
        forged = _delivery("whsec_" + base64.b64encode(b"another-secret-entirely").decode(), "p3", "w3")
        refused = lambda_handler(forged, _Context())
        big = prediction_body("p4", "completed", error="x" * 5000)
        headers = {"content-type": "application/json", **signed_headers(secret, big, webhook_id="w4")}
        too_large = lambda_handler(http_api_event("POST", "/webhooks/wavespeed", body=big, headers=headers), _Context())
        health = lambda_handler(http_api_event("GET", "/healthz"), _Context())
    assert (accepted["statusCode"], json.loads(accepted["body"])) == (200, {"received": True, "duplicate": False})
    assert (duplicate["statusCode"], json.loads(duplicate["body"])) == (200, {"received": True, "duplicate": True})
    assert (binary["statusCode"], json.loads(binary["body"])["duplicate"]) == (200, False)
    assert (refused["statusCode"], json.loads(refused["body"])["reason"]) == (401, "signature_mismatch")
    assert (too_large["statusCode"], json.loads(too_large["body"])["reason"]) == (413, "body_too_large")
    assert health["statusCode"] == 200

    events = query(db, "SELECT webhook_id, prediction_id, duplicates FROM events ORDER BY id")
    assert events == [
        {"webhook_id": "w1", "prediction_id": "p1", "duplicates": 1},
        {"webhook_id": "w2", "prediction_id": "p2", "duplicates": 0},
    ]
    runs = query(db, "SELECT prediction_id, handler, state FROM handler_runs ORDER BY id")
    assert runs
    assert {(row["prediction_id"], row["state"]) for row in runs} == {("p1", "pending"), ("p2", "pending")}
    assert [entry["event"] for entry in logs].count("receiver_started") == 1
    assert "dispatcher_started" not in [entry["event"] for entry in logs]


def test_the_module_handler_reads_its_settings_from_the_environment(
    tmp_path: Path, secret: str, ledger_settings: Callable[..., Settings]
) -> None:
    """``wavehook.aws_lambda.handler``, as the Lambda runtime calls it in a fresh process: settings from the
    environment on the first event, the delivery accepted into the ledger the environment names (a SQLite
    file, or the test suite's PostgreSQL)."""
    db = ledger_settings().db
    event = _delivery(secret, "p9", "w9")
    script = (
        "import json, sys\n"
        "from wavehook.aws_lambda import handler\n"
        "event = json.load(sys.stdin)\n"
        "print(json.dumps([handler(event, None), handler(event, None)]))\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "WAVESPEED_WEBHOOK_SECRET": secret,
        "WAVEHOOK_DB": db,
        "WAVEHOOK_LOG_FORMAT": "json",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(event),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first, second = json.loads(done.stdout)
    assert [json.loads(first["body"])["duplicate"], json.loads(second["body"])["duplicate"]] == [False, True]
    assert query(db, "SELECT webhook_id FROM events") == [{"webhook_id": "w9"}]
