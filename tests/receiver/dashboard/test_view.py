"""How the dashboard shows ledger values: durations, links, media kinds, the timeline."""

from __future__ import annotations

import pytest

from receiver.dashboard import view


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "—"), (0.42, "420 ms"), (4.2, "4.2 s"), (42, "42 s"), (185, "3 min 5 s"), (7620, "2 h 7 min")],
)
def test_duration(seconds: float | None, shown: str) -> None:
    """Durations read naturally at every scale, and an unknown one is a dash."""
    assert view.duration(seconds) == shown


def test_only_http_urls_become_links() -> None:
    """A javascript: or data: output never becomes a link or a media source."""
    assert view.safe_url("https://cdn.example.com/a.mp4") == "https://cdn.example.com/a.mp4"
    for bad in ("javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,x", "//host/x", 42, None):
        assert view.safe_url(bad) is None


def test_media_kind_from_content_type_then_path() -> None:
    """The content type decides when known; otherwise the URL path's extension (query ignored)."""
    assert view.media_kind("https://x/a.mp4?sig=1") == "video"
    assert view.media_kind("https://x/a.PNG") == "image"
    assert view.media_kind("https://x/file") == "link"
    assert view.media_kind("https://x/file", "video/mp4") == "video"


def test_started_at_prefers_submit_then_provider_clock() -> None:
    """Time to completion counts from our submit, else the provider's created_at, else first sight."""
    base = {"first_seen_at": 300.0, "completed_at": 400.0}
    assert view.completion_seconds({**base, "submitted_at": 100.0}) == 300.0
    assert view.completion_seconds({**base, "provider_created_at": "1970-01-01T00:03:20Z"}) == 200.0
    assert view.completion_seconds(base) == 100.0
    assert view.completion_seconds({"first_seen_at": 300.0, "completed_at": None}) is None


def test_outputs_prefer_the_local_copy() -> None:
    """An output downloaded by the handler is served from /media/{id}; others from the provider."""
    prediction = {
        "outputs": ["https://cdn/a.mp4", "https://cdn/b.png", "javascript:x"],
        "downloads": [{"id": 7, "url": "https://cdn/a.mp4", "content_type": "video/mp4"}],
    }
    shown = [(o["src"], o["kind"]) for o in view.outputs(prediction)]
    assert shown == [("/media/7", "video"), ("https://cdn/b.png", "image")]


def test_timeline_orders_everything_by_time() -> None:
    """Submit, deliveries, refusals and attempts interleave in time order, with duplicates and conflicts noted."""
    prediction = {
        "submitted_at": 1.0,
        "events": [
            {
                "received_at": 5.0,
                "source": "webhook",
                "status": "completed",
                "applied": 1,
                "duplicates": 2,
                "conflict": 0,
                "webhook_id": "w1",
                "body": "{}",
            },
            {
                "received_at": 9.0,
                "source": "reconcile",
                "status": "completed",
                "applied": 0,
                "duplicates": 0,
                "conflict": 1,
                "webhook_id": "w2",
                "body": "{}",
            },
        ],
        "quarantined": [
            {
                "received_at": 3.0,
                "reason": "stale_timestamp",
                "detail": "old",
                "count": 1,
                "webhook_id": "w0",
                "body": "{}",
            }
        ],
        "handler_runs": [
            {
                "handler": "log",
                "attempt_history": [
                    {"started_at": 6.0, "attempt": 1, "outcome": "succeeded", "duration_ms": 12.0, "error": None}
                ],
            }
        ],
    }
    items = view.timeline(prediction)
    assert [i["kind"] for i in items] == ["submit", "quarantine", "webhook", "attempt", "conflict"]
    assert "repeated 2×" in items[2]["notes"]
    assert items[4]["title"].startswith("Reconciled")


def test_every_timeline_item_renders() -> None:
    """Each kind of timeline item (a submit included) renders in the template with its title."""
    from receiver.dashboard.rendering import render

    prediction = {
        "submitted_at": 1.0,
        "events": [],
        "quarantined": [
            {
                "received_at": 3.0,
                "reason": "stale_timestamp",
                "detail": "old",
                "count": 2,
                "webhook_id": "w0",
                "body": "{}",
            }
        ],
        "handler_runs": [
            {
                "handler": "log",
                "attempt_history": [
                    {"started_at": 6.0, "attempt": 1, "outcome": None, "duration_ms": None, "error": None}
                ],
            }
        ],
    }
    html = render("_detail_timeline.html", timeline=view.timeline(prediction))
    for title in ("Submitted", "Quarantined · stale_timestamp", "log · attempt 1 · running", "seen 2×"):
        assert title in html
