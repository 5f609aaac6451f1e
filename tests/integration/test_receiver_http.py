"""The receiver against a real ``wavehook serve`` on loopback: answers, what reaches the ledger file, and logs."""

from __future__ import annotations

import concurrent.futures
import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET
from tests.integration.receiver_client import PATH, Delivery, Server, burst, post, query, raw_exchange, serve
from tests.support import ROOT, WAVEHOOK, prediction_body, sign, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests of this module; each test uses its own webhook and prediction ids."""
    with serve(tmp_path_factory.mktemp("serve")) as running_server:
        yield running_server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def events(server: Server, webhook_id_like: str) -> list[tuple[object, ...]]:
    return query(
        server.db, "SELECT webhook_id, status, duplicates FROM events WHERE webhook_id LIKE ?", [webhook_id_like]
    )


REJECTIONS = [
    ("missing-id", {"webhook-id": None}, "missing_header"),
    ("missing-ts", {"webhook-timestamp": None}, "missing_header"),
    ("missing-sig", {"webhook-signature": None}, "missing_header"),
    ("malformed", {"webhook-signature": "v3,not-hex"}, "malformed_header"),
    ("scheme", {"webhook-signature": "v1,"}, "unsupported_scheme"),
    ("mismatch", {"webhook-signature": "v3," + "0" * 64}, "signature_mismatch"),
    ("not-integer", {"webhook-timestamp": "soon"}, "invalid_timestamp"),
]


@pytest.mark.parametrize(("name", "change", "reason"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_each_rejection_is_401_and_stores_no_event(
    server: Server, client: httpx.Client, name: str, change: dict[str, str | None], reason: str
) -> None:
    """Every way a signature check fails answers 401 with its reason, and no event row is written."""
    webhook_id = f"reject-{name}"
    body = prediction_body(f"p-reject-{name}")
    ts = str(int(time.time()))
    headers: dict[str, str] = {
        "webhook-id": webhook_id,
        "webhook-timestamp": ts,
        "webhook-signature": sign(SECRET, webhook_id, ts, body),
        "content-type": "application/json",
    }
    for header, value in change.items():
        if value is None:
            del headers[header]
        else:
            headers[header] = value
    response = client.post(server.url + PATH, content=body, headers=headers)
    assert (response.status_code, response.json()["reason"]) == (401, reason)
    assert query(server.db, "SELECT count(*) FROM events WHERE prediction_id = ?", [f"p-reject-{name}"]) == [(0,)]
    assert query(server.db, "SELECT count(*) FROM predictions WHERE id = ?", [f"p-reject-{name}"]) == [(0,)]


@pytest.mark.parametrize(("offset", "reason"), [(-400, "stale_timestamp"), (400, "future_timestamp")])
def test_untimely_authentic_delivery_is_401_and_quarantined(
    server: Server, client: httpx.Client, offset: int, reason: str
) -> None:
    """A genuine delivery beyond the tolerance answers 401; it is kept in quarantine, never as an event."""
    delivery = Delivery(f"late-{reason}", prediction_body(f"p-{reason}"))
    response = post(client, server.url, delivery, timestamp=int(time.time()) + offset)
    assert (response.status_code, response.json()["reason"]) == (401, reason)
    assert events(server, delivery.webhook_id) == []
    assert query(server.db, "SELECT reason FROM quarantine WHERE webhook_id = ?", [delivery.webhook_id]) == [(reason,)]


def test_twenty_concurrent_copies_make_one_event(server: Server) -> None:
    """Twenty copies of one delivery sent at once are all answered 200 and stored as exactly one event."""
    delivery = Delivery("copies-1", prediction_body("p-copies"))
    results = burst(server.url, [delivery] * 20, threads=20)
    assert results == [200] * 20
    assert events(server, "copies-1") == [("copies-1", "completed", 19)]


def test_reordered_statuses_never_regress(server: Server, client: httpx.Client) -> None:
    """completed, then processing, then created: the prediction stays completed and all three are events."""
    for status in ("completed", "processing", "created"):
        response = post(client, server.url, Delivery(f"order-{status}", prediction_body("p-order", status)))
        assert response.status_code == 200
    assert query(server.db, "SELECT status FROM predictions WHERE id = 'p-order'") == [("completed",)]
    assert len(events(server, "order-%")) == 3


def test_delivery_for_an_unsubmitted_prediction_creates_it(server: Server, client: httpx.Client) -> None:
    """A prediction nobody submitted through wavehook is created from its first delivery."""
    post(client, server.url, Delivery("stranger-1", prediction_body("p-stranger")))
    rows = query(server.db, "SELECT status, model, outputs FROM predictions WHERE id = 'p-stranger'")
    assert rows == [
        ("completed", "bytedance/seedance-v1-lite-t2v-480p", '["https://cdn.example.com/p-stranger/output.mp4"]')
    ]


def test_fifty_megabytes_declared_is_413_without_reading_it(server: Server) -> None:
    """A 50 MB Content-Length is refused with 413 after a few bytes, and the server closes instead of reading on."""
    body = prediction_body("p-huge")
    headers = {
        "webhook-id": "huge-1",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": sign(SECRET, "huge-1", int(time.time()), body),
    }
    head = "POST /webhooks/wavespeed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {50 * 1024 * 1024}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    started = time.monotonic()
    answer = raw_exchange(server.port, head.encode() + body)  # returns only once the server closes
    elapsed = time.monotonic() - started
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert b"connection: close" in rest.lower()
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["reason"] == "body_too_large"
    assert elapsed < 5
    assert events(server, "huge-1") == []


def test_chunked_body_over_the_limit_is_413(server: Server) -> None:
    """A chunked body with no Content-Length is refused with 413 once it passes the 1 MiB limit."""
    head = b"POST /webhooks/wavespeed HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
    head += b"webhook-id: chunked-1\r\nwebhook-timestamp: 1\r\nwebhook-signature: v3," + b"0" * 64 + b"\r\n\r\n"
    # Exactly 1 MiB, then 16 bytes more and no terminating chunk: the server must read all of it to see the
    # excess, so nothing is left unread when it closes (unread bytes would make the close a reset).
    sizes = [256 * 1024] * 4 + [16]
    chunks = b"".join(b"%x\r\n%s\r\n" % (size, b"x" * size) for size in sizes)
    answer = raw_exchange(server.port, head + chunks)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"reason":"body_too_large"' in answer


def test_the_server_still_serves_after_refusals(server: Server, client: httpx.Client) -> None:
    """After oversized and refused requests, the same server still accepts deliveries."""
    assert post(client, server.url, Delivery("after-1", prediction_body("p-after"))).status_code == 200


def test_process_logs_are_json_without_secrets(server: Server, client: httpx.Client) -> None:
    """Every line the real process writes is JSON, with one canonical line per delivery and no secret."""
    delivery = Delivery("logged-1", prediction_body("p-logged"))
    headers_sent = []
    for key in (SECRET, "whsec_d3Jvbmc"):
        response = post(client, server.url, delivery, secret=key)
        headers_sent.append(response.request.headers["webhook-signature"])
    lines = wait_for(
        lambda: (
            [line for line in server.process.log().splitlines() if '"logged-1"' in line and "webhook_" in line]
            if server.process.log().count('"logged-1"') >= 2
            else None
        ),
        what="the canonical lines of logged-1",
    )
    assert [json.loads(line)["outcome"] for line in lines] == ["accepted", "rejected"]
    log = server.process.log()
    parsed = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert any(entry.get("logger", "").startswith("uvicorn") for entry in parsed)  # uvicorn's lines too
    for forbidden in [SECRET, SECRET.removeprefix("whsec_"), *(h.removeprefix("v3,") for h in headers_sent)]:
        assert forbidden not in log


def test_serve_without_a_secret_exits_with_help(tmp_path: Path) -> None:
    """The real command refuses to start without a secret, exits non-zero and says how to get one."""
    env = {"PATH": "/usr/bin:/bin", "WAVEHOOK_DB": str(tmp_path / "w.db")}
    result = subprocess.run([WAVEHOOK, "serve"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "WAVESPEED_WEBHOOK_SECRET" in result.stderr
    assert "GET /api/v3/webhook/secret" in result.stderr


def test_a_write_waiting_on_the_lock_blocks_neither_the_loop_nor_its_answer(tmp_path: Path) -> None:
    """While a delivery waits for a lock held elsewhere, /healthz still answers at once; freed, it is stored."""
    with serve(tmp_path, env={"WAVEHOOK_BUSY_TIMEOUT_MS": "3000"}) as server, httpx.Client(timeout=10) as client:
        holder = sqlite3.connect(server.db, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pending = pool.submit(lambda: burst(server.url, [Delivery("waiting-1", prediction_body("p-w"))]))
                started = time.monotonic()
                assert client.get(server.url + "/healthz").status_code == 200
                assert time.monotonic() - started < 1.0
                assert not pending.done()  # still waiting for the lock, up to 3 s
                holder.execute("ROLLBACK")
                assert pending.result(10) == [200]
        finally:
            holder.close()
        assert events(server, "waiting-1") == [("waiting-1", "completed", 0)]


def test_storage_failure_is_503_and_the_retry_is_stored(tmp_path: Path) -> None:
    """While another process holds the write lock, deliveries get 503 and /readyz 503; the retry is stored once."""
    with serve(tmp_path, env={"WAVEHOOK_BUSY_TIMEOUT_MS": "200"}) as server, httpx.Client(timeout=10) as client:
        delivery = Delivery("locked-1", prediction_body("p-locked"))
        holder = sqlite3.connect(server.db, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            response = post(client, server.url, delivery)
            assert (response.status_code, response.json()["reason"]) == (503, "storage_unavailable")
            assert client.get(server.url + "/readyz").status_code == 503
            assert client.get(server.url + "/healthz").status_code == 200
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        assert events(server, "locked-1") == []
        assert client.get(server.url + "/readyz").status_code == 200
        retry = post(client, server.url, delivery)
        assert (retry.status_code, retry.json()["duplicate"]) == (200, False)
        assert events(server, "locked-1") == [("locked-1", "completed", 0)]
