"""Logs: one canonical line per delivery, JSON off a terminal and console on one, never a secret or signature."""

from __future__ import annotations

import datetime
import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from receiver import logs
from tests.receiver.conftest import NOW
from tests.support import prediction_body, signed_headers

URL = "/webhooks/wavespeed"
CANONICAL = {"webhook_received", "webhook_rejected"}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put structlog and the root logger back as they were, so other tests' capture_logs keep working."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


def deliveries(client: TestClient, secret: str) -> list[bytes]:
    """Post an accepted delivery, its duplicate, a forged one and a signed unusable one; return the signatures."""
    body = prediction_body("p1")
    sent = []
    for webhook_id, payload, key in (
        ("w1", body, secret),
        ("w1", body, secret),
        ("w2", body, "whsec_Zm9yZ2Vk"),
        ("w3", b"[]", secret),
    ):
        headers = signed_headers(key, payload, webhook_id=webhook_id, timestamp=NOW)
        headers["authorization"] = "Bearer sk-live-do-not-log"
        client.post(URL, content=payload, headers=headers)
        sent.append(headers["webhook-signature"].encode())
    return sent


def test_one_canonical_line_per_delivery(app_client: Callable[..., TestClient], secret: str) -> None:
    """Every delivery, accepted or not, yields exactly one canonical line with its ids, outcome and duration."""
    client = app_client()
    with capture_logs() as entries:
        deliveries(client, secret)
    lines = [e for e in entries if e["event"] in CANONICAL]
    assert [(e["webhook_id"], e["outcome"]) for e in lines] == [
        ("w1", "accepted"),
        ("w1", "duplicate"),
        ("w2", "rejected"),
        ("w3", "rejected"),
    ]
    first = lines[0]
    assert (first["prediction_id"], first["model"], first["status"]) == (
        "p1",
        "bytedance/seedance-v1-lite-t2v-480p",
        "completed",
    )
    assert [e.get("reason") for e in lines[2:]] == ["signature_mismatch", "not_an_object"]
    assert all(isinstance(e["duration_ms"], float) and e["duration_ms"] >= 0 for e in lines)


def test_no_secret_signature_or_authorization_is_logged(app_client: Callable[..., TestClient], secret: str) -> None:
    """Whatever the outcome, no captured log event holds the secret, a signature or the Authorization header."""
    client = app_client()
    with capture_logs() as entries:
        signatures = deliveries(client, secret)
    text = repr(entries)
    assert entries
    for forbidden in [secret, secret.removeprefix("whsec_"), "sk-live-do-not-log", *(s.decode() for s in signatures)]:
        assert forbidden not in text
    for signature in signatures:
        assert signature.decode().removeprefix("v3,") not in text


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_when_not_a_terminal() -> None:
    """Off a terminal, structlog lines and uvicorn's standard-library lines are JSON; secret keys are redacted."""
    stream = io.StringIO()
    logs.configure(log_format="auto", level="info", stream=stream)
    structlog.get_logger().info("webhook_received", webhook_id="w1", api_key="sk-live", duration_ms=1.5)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    structlog.get_logger().debug("too_detailed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["event"], first["webhook_id"], first["api_key"], first["level"]) == (
        "webhook_received",
        "w1",
        "[redacted]",
        "info",
    )
    assert "timestamp" in first
    assert (second["event"], second["logger"], second["level"]) == (
        "Started server process [42]",
        "uvicorn.error",
        "info",
    )


@pytest.mark.usefixtures("restore_logging")
def test_console_lines_on_a_terminal() -> None:
    """On a terminal, lines are for people: not JSON, event name and keys readable."""
    stream = Terminal()
    logs.configure(log_format="auto", level="info", stream=stream)
    structlog.get_logger().info("webhook_received", webhook_id="w1")
    line = stream.getvalue().strip()
    assert "webhook_received" in line
    assert "w1" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


@pytest.mark.usefixtures("restore_logging")
def test_level_filters() -> None:
    """At level warning, info lines are dropped from structlog and the standard library alike."""
    stream = io.StringIO()
    logs.configure(log_format="json", level="warning", stream=stream)
    structlog.get_logger().info("quiet")
    logging.getLogger("uvicorn.error").info("quiet too")
    structlog.get_logger().warning("loud")
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["loud"]


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_a_utc_timestamp_and_render_what_orjson_refuses() -> None:
    """The timestamp is ISO 8601 UTC to the microsecond; values orjson refuses still make a JSON line."""
    stream = io.StringIO()
    logs.configure(log_format="json", level="info", stream=stream)
    before = datetime.datetime.now(datetime.UTC)
    structlog.get_logger().info("plain", prompt="caf\u00e9")
    structlog.get_logger().info("odd", big=2**70, text="\ud800", keyed={1: "one"})
    after = datetime.datetime.now(datetime.UTC)
    plain, odd = (json.loads(line) for line in stream.getvalue().splitlines())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", plain["timestamp"])
    stamped = datetime.datetime.fromisoformat(plain["timestamp"].replace("Z", "+00:00"))
    assert before - datetime.timedelta(milliseconds=1) <= stamped <= after
    assert plain["prompt"] == "caf\u00e9"
    assert (odd["big"], odd["text"], odd["keyed"]) == (2**70, "\ud800", {"1": "one"})


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("log_format", ["json", "console"])
def test_correlation_tokens_never_reach_a_log_line(log_format: str) -> None:
    """A per-job token in a URL is masked wherever a URL is logged: httpx's request line (the webhook URL
    URL-encoded inside the submit URL), uvicorn's access line, and any value bound to a structlog line."""
    stream = io.StringIO()
    logs.configure(log_format=log_format, level="info", stream=stream)
    submit = "http://api.example/api/v3/m?webhook=https%3A%2F%2Fh.example%2Fwebhooks%2Fwavespeed%3Fref%3Dwh_1%26token%3Dtok111111"
    logging.getLogger("httpx").info('HTTP Request: %s %s "%s %d %s"', "POST", submit, "HTTP/1.1", 200, "OK")
    access = '%s - "%s %s HTTP/%s" %d'
    logging.getLogger("uvicorn.access").info(
        access, "127.0.0.1:5", "POST", "/webhooks/wavespeed?ref=wh_1&token=tok222222", "1.1", 200
    )
    structlog.get_logger().info("submission_sent", webhook_url="https://h.example/w?ref=wh_1&token=tok333333&x=1")
    text = stream.getvalue()
    assert [secret for secret in ("tok1", "tok2", "tok3") if secret in text] == [], text
    assert text.count("[redacted]") >= 3
    assert [kept for kept in ("ref%3Dwh_1", "ref=wh_1", "x=1") if kept not in text] == []  # the rest of each URL


def test_a_huge_webhook_id_is_logged_only_up_to_its_limit(app_client: Callable[..., TestClient], secret: str) -> None:
    """A refused 200 kB webhook-id costs at most its 256-character limit (and a marker) of log, not 200 kB."""
    client = app_client()
    body = prediction_body("p1")
    headers = signed_headers(secret, body, webhook_id="w" * 200_000, timestamp=NOW)
    with capture_logs() as captured:
        response = client.post(URL, content=body, headers=headers)
    assert (response.status_code, response.json()["reason"]) == (401, "malformed_header")
    (line,) = [entry for entry in captured if entry["event"] == "webhook_rejected"]
    assert line["webhook_id"].startswith("w" * 256)
    assert len(line["webhook_id"]) < 300


@pytest.mark.usefixtures("restore_logging")
def test_each_line_carries_its_process_id_also_in_a_forked_child(tmp_path: Path) -> None:
    """The pid is read once per process: a child forked after logging was configured writes its own."""
    path = tmp_path / "lines.jsonl"
    with path.open("w", buffering=1) as stream:
        logs.configure(log_format="json", level="info", stream=stream)
        structlog.get_logger().info("in_parent")
        child = os.fork()
        if child == 0:  # the child: one line, then leave without running the parent's clean-up
            try:
                structlog.get_logger().info("in_child")
                stream.flush()
            finally:
                os._exit(0)
        _pid, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    pids = {line["event"]: line["pid"] for line in map(json.loads, path.read_text().splitlines())}
    assert pids == {"in_parent": os.getpid(), "in_child": child}
