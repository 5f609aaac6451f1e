"""The dashboard's pages in process: counts, 1,000+ rows paginated, filters, live fragments, escaping, detail."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from receiver.delivery import parse
from receiver.settings import Settings
from receiver.store.records import Download
from tests.receiver.web_support import Clock, deliver, failing_handlers, ingest, ledger_call, web_client
from tests.support import prediction_body, wait_for

# Runs on every ledger backend (SQLite, PostgreSQL): see ``settings_factory``.
pytestmark = pytest.mark.usefixtures("backend")

T2V = "bytedance/seedance-v1-lite-t2v-480p"


@pytest.fixture
def client(settings_factory: Callable[..., Settings]) -> Iterator[TestClient]:
    with web_client(settings_factory()) as test_client:
        yield test_client


def bulk(client: TestClient, count: int) -> None:
    """Ingest ``count`` predictions straight through the ingest path (faster than HTTP for a thousand)."""
    for n in range(count):
        status = ("completed", "failed", "processing")[n % 3]
        ingest(client, parse(prediction_body(f"p{n:04d}", status), webhook_id=f"w{n}"))


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([^"]+)"', html)


def test_thousand_predictions_are_paginated(client: TestClient) -> None:
    """With 1,200 predictions the page shows 50 rows, the true total, and an Older link to the next 50."""
    bulk(client, 1200)
    page = client.get("/")
    assert page.status_code == 200
    first = row_ids(page.text)
    assert len(first) == 50
    assert "50 shown of 1,200" in page.text
    assert ">1,200<" in page.text  # the Predictions tile
    older = re.search(r'<a rel="next" href="([^"]+)"', page.text)
    assert older is not None
    second = row_ids(client.get(older.group(1).replace("&amp;", "&")).text)
    assert len(second) == 50
    assert not set(first) & set(second)


def test_counts_per_model_and_status(client: TestClient, secret: str) -> None:
    """The top table has a row per model with a count per status, linking to the filtered list."""
    deliver(client, secret, "a", model=T2V)
    deliver(client, secret, "b", "failed", model=T2V)
    deliver(client, secret, "c", model="bytedance/waver-1.0")
    html = client.get("/").text
    assert re.search(r"bytedance/waver-1\.0</a></td>\s*<td", html)
    assert 'href="/?model=bytedance/seedance-v1-lite-t2v-480p&amp;status=failed">1</a>' in html


def test_filters_narrow_the_rows(client: TestClient) -> None:
    """status and model in the query string narrow the table and keep the pager's total honest."""
    bulk(client, 30)
    html = client.get("/?status=failed").text
    assert len(row_ids(html)) == 10
    assert 'data-status="completed"' not in html
    assert "10 shown of 10" in html
    assert row_ids(client.get("/?model=nobody").text) == []


def test_live_fragments_match_the_page_until_something_changes(client: TestClient, secret: str) -> None:
    """The fragments carry the same section hashes as the page, and a new hash once a prediction changes."""
    deliver(client, secret, "p1", "processing")
    page = client.get("/").text
    hashes = dict(re.findall(r'data-section="(\w+)" data-hash="(\w+)"', page))
    live = client.get("/fragments/index").json()
    assert live["hashes"] == hashes
    deliver(client, secret, "p1", "completed")
    changed = client.get("/fragments/index").json()
    assert changed["hashes"]["rows"] != hashes["rows"]
    assert 'data-status="completed"' in changed["sections"]["rows"]


def test_untrusted_values_are_escaped(client: TestClient, secret: str) -> None:
    """A model name or output carrying markup is shown as text, and a javascript: output is not linked."""
    deliver(client, secret, "x1", model="<script>alert(1)</script>", outputs=["javascript:alert(2)"])
    index = client.get("/").text
    detail = client.get("/predictions/x1").text
    for html in (index, detail):
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"(href|src)=\"javascript:", detail)


def test_pages_send_a_strict_content_security_policy(client: TestClient) -> None:
    """Pages allow scripts and styles from this origin only, and cannot be framed."""
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_detail_shows_video_image_and_timeline(client: TestClient, secret: str) -> None:
    """A video output gets a <video> player, an image an <img>, and the timeline lists the deliveries."""
    deliver(client, secret, "v1", "processing")
    deliver(client, secret, "v1", outputs=["https://cdn.example.com/v1/out.mp4", "https://cdn.example.com/v1/a.png"])
    html = client.get("/predictions/v1").text
    assert '<video controls preload="metadata" playsinline src="https://cdn.example.com/v1/out.mp4">' in html
    assert '<img src="https://cdn.example.com/v1/a.png"' in html
    assert "Webhook · processing" in html
    assert "Webhook · completed" in html
    assert "a red fox running through fresh snow" in html  # the input


def test_unknown_prediction_page_is_404(client: TestClient) -> None:
    """A detail page for an id the ledger does not hold answers 404."""
    assert client.get("/predictions/nope").status_code == 404


def test_local_copy_is_served_with_ranges(client: TestClient, secret: str, tmp_path: Path) -> None:
    """A downloaded output is the detail's video source, served from the media directory with Range support."""
    media: Path = client.app.state.receiver.settings.media_dir  # type: ignore[attr-defined]
    local = media / "v1" / "out.mp4"
    local.parent.mkdir(parents=True)
    local.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    url = "https://cdn.example.com/v1/out.mp4"
    deliver(client, secret, "v1", outputs=[url])
    download = Download("v1", url, str(local), size=112, sha256="ab" * 32, content_type="video/mp4")
    ledger_call(client, "record_download", download, now=1)
    html = client.get("/predictions/v1").text
    source = re.search(r'<video [^>]*src="(/media/\d+)"', html)
    assert source is not None
    assert "local copy" in html
    whole = client.get(source.group(1))
    assert (whole.status_code, whole.headers["content-type"]) == (200, "video/mp4")
    assert whole.content[4:8] == b"ftyp"
    part = client.get(source.group(1), headers={"Range": "bytes=4-7"})
    assert (part.status_code, part.content) == (206, b"ftyp")


def test_local_copy_outside_the_media_directory_is_not_served(client: TestClient, secret: str, tmp_path: Path) -> None:
    """A recorded path that leads out of the media directory answers 404, never the file."""
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the web")
    deliver(client, secret, "v1")
    download = Download("v1", "u", str(outside), size=1, sha256="0" * 64, content_type="text/plain")
    ledger_call(client, "record_download", download, now=1)
    assert client.get("/media/1").status_code == 404
    assert client.get("/media/99").status_code == 404


def test_dead_letters_list_dead_runs_with_replay(settings_factory: Callable[..., Settings], secret: str) -> None:
    """The dead-letter page lists each dead run with its error and a Replay button, and the detail shows it too."""
    settings = settings_factory()
    with web_client(
        settings, clock=Clock(), handlers=failing_handlers(settings, "upload", "the bucket said no")
    ) as client:
        deliver(client, secret, "p1")

        def dead_page() -> str | None:
            html = client.get("/dead").text
            return html if 'data-state="dead"' in html else None

        html = wait_for(dead_page, what="the dead run on the page")
        detail = client.get("/predictions/p1").text
    assert "the bucket said no" in html
    assert re.search(r'data-replay="/api/runs/\d+/replay"', html)
    assert 'data-replay="/api/runs/replay-dead"' in html
    assert re.search(r'data-replay="/api/runs/\d+/replay">Replay', detail)
    assert "upload · attempt 1 · failed" in detail


def test_missed_webhooks_are_counted_on_the_page(client: TestClient) -> None:
    """A result that reconciliation had to fetch shows in the Missed webhooks tile and on the timeline."""
    missed = parse(prediction_body("m1"), webhook_id="reconcile-m1", source="reconcile")
    ingest(client, missed)
    assert 'data-count="missed_webhooks">1<' in client.get("/").text
    assert "Reconciled · completed (its webhook never came)" in client.get("/predictions/m1").text
