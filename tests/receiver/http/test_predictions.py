"""The JSON API: listing with filters and cursors, one prediction with its whole history, the summary."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from receiver.settings import Settings
from tests.receiver.web_support import NOW, Clock, deliver, failing_handlers, web_client
from tests.support import direct, prediction_body, signed_headers, wait_for

# Runs on every ledger backend (SQLite, PostgreSQL): see ``settings_factory``.
pytestmark = pytest.mark.usefixtures("backend")

T2V = "bytedance/seedance-v1-lite-t2v-480p"
WAVER = "bytedance/waver-1.0"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(settings_factory: Callable[..., Settings], clock: Clock) -> Iterator[TestClient]:
    with web_client(settings_factory(), clock=clock) as test_client:
        yield test_client


def ids(response: object) -> list[str]:
    return [p["id"] for p in response.json()["predictions"]]  # type: ignore[attr-defined]


def test_list_filters_by_status_and_model(client: TestClient, secret: str) -> None:
    """status and model narrow the list; together they intersect."""
    deliver(client, secret, "a", "completed", model=T2V)
    deliver(client, secret, "b", "failed", model=T2V)
    deliver(client, secret, "c", "completed", model=WAVER)
    assert sorted(ids(client.get("/api/predictions?status=completed"))) == ["a", "c"]
    assert sorted(ids(client.get(f"/api/predictions?model={T2V}"))) == ["a", "b"]
    assert ids(client.get(f"/api/predictions?model={WAVER}&status=completed")) == ["c"]
    assert ids(client.get("/api/predictions?status=processing")) == []


def test_list_since_returns_only_later_updates(client: TestClient, secret: str, clock: Clock) -> None:
    """since (Unix seconds) keeps the predictions updated at or after it."""
    deliver(client, secret, "old")
    clock.now += 60
    deliver(client, secret, "new")
    assert ids(client.get(f"/api/predictions?since={NOW + 30}")) == ["new"]
    assert sorted(ids(client.get(f"/api/predictions?since={NOW}"))) == ["new", "old"]


def test_cursor_pages_through_everything_once(client: TestClient, secret: str, clock: Clock) -> None:
    """Following next_cursor visits every prediction exactly once, newest first, even with equal timestamps."""
    for n in range(120):
        clock.now = NOW + n // 7  # groups of equal updated_at, which the cursor must split correctly
        deliver(client, secret, f"p{n:03d}")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = "/api/predictions?limit=50" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url).json()
        seen += [p["id"] for p in page["predictions"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == [f"p{n:03d}" for n in range(120)]
    assert len(set(seen)) == 120
    stamps = [(n // 7, f"p{n:03d}") for n in range(120)]
    assert seen == [pid for _stamp, pid in sorted(stamps, reverse=True)]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("limit=0", "limit='0'"),
        ("limit=501", "limit='501'"),
        ("limit=ten", "limit='ten'"),
        ("cursor=not-a-cursor", "cursor='not-a-cursor'"),
        ("since=yesterday", "since='yesterday'"),
    ],
)
def test_bad_query_parameters_answer_400_naming_them(client: TestClient, query: str, named: str) -> None:
    """A malformed query parameter answers 400 in the one error shape, naming the parameter and value."""
    response = client.get(f"/api/predictions?{query}")
    assert response.status_code == 400
    assert response.json()["reason"] == "bad_request"
    assert named in response.json()["error"]


def test_unknown_prediction_is_404(client: TestClient) -> None:
    """An id the ledger does not hold answers 404 with the error shape."""
    response = client.get("/api/predictions/nope")
    assert (response.status_code, response.json()["reason"]) == (404, "not_found")
    assert "'nope'" in response.json()["error"]


def test_one_prediction_carries_duplicates_conflicts_and_quarantine(
    client: TestClient, secret: str, clock: Clock
) -> None:
    """The detail lists every event (with its duplicate count and conflict flag) and the quarantined deliveries."""
    deliver(client, secret, "p1", "processing", webhook_id="p1")
    deliver(client, secret, "p1", "processing", webhook_id="p1")  # the same delivery again
    deliver(client, secret, "p1", "completed", webhook_id="p1")  # another body under the same id
    stale_body = prediction_body("p1", "completed", error="late")
    stale = signed_headers(secret, stale_body, webhook_id="late-1", timestamp=int(clock.now) - 3600)
    assert client.post("/webhooks/wavespeed", content=stale_body, headers=stale).status_code == 401
    item = client.get("/api/predictions/p1").json()
    assert item["status"] == "completed"
    events = [(e["status"], e["duplicates"], e["conflict"], e["applied"]) for e in item["events"]]
    assert events == [("processing", 1, 0, 1), ("completed", 0, 1, 1)]
    assert [(q["webhook_id"], q["reason"]) for q in item["quarantined"]] == [("late-1", "stale_timestamp")]
    assert item["handler_runs"] == []
    assert item["downloads"] == []


def test_one_prediction_carries_its_runs_with_attempt_history(
    settings_factory: Callable[..., Settings], secret: str
) -> None:
    """Each handler run comes with its attempts: outcome and error of every one."""
    settings = settings_factory()
    with web_client(settings, handlers=failing_handlers(settings, "upload", "the bucket is unreachable")) as client:
        deliver(client, secret, "p1")
        runs = wait_for(
            lambda: [r for r in client.get("/api/predictions/p1").json()["handler_runs"] if r["state"] == "dead"],
            what="the run to be dead",
        )
    assert [(r["handler"], r["attempts"]) for r in runs] == [("upload", 1)]
    history = runs[0]["attempt_history"]
    assert [(a["attempt"], a["outcome"]) for a in history] == [(1, "failed")]
    assert "the bucket is unreachable" in history[0]["error"]


def test_summary_counts_by_model_and_status(client: TestClient, secret: str) -> None:
    """/api/summary counts predictions per model and status, with the outbox, dead runs and missed webhooks."""
    deliver(client, secret, "a", "completed", model=T2V)
    deliver(client, secret, "b", "completed", model=T2V)
    deliver(client, secret, "c", "failed", model=WAVER)
    summary = client.get("/api/summary").json()
    assert summary["predictions"] == [
        {"model": T2V, "status": "completed", "count": 2},
        {"model": WAVER, "status": "failed", "count": 1},
    ]
    assert (summary["dead_runs"], summary["missed_webhooks"], summary["outbox_depth"]) == (0, 0, 0)
    assert summary["oldest_pending_age_seconds"] is None


def test_the_correlation_token_is_never_shown(client: TestClient, secret: str) -> None:
    """A prediction's webhook URL is shown with its correlation token masked, in the API and on the page."""
    deliver(client, secret, "tok")
    token = "f00dfeedcafe1234"
    with direct(client.app.state.receiver.settings.db) as conn:  # type: ignore[attr-defined]
        conn.execute(
            "UPDATE predictions SET webhook_url = ? WHERE id = 'tok'",
            (f"https://h.example/webhooks/wavespeed?ref=wh_1&token={token}",),
        )
    for path in ("/api/predictions/tok", "/api/predictions", "/predictions/tok"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert token not in answer.text, path
    shown = client.get("/api/predictions/tok").json()["webhook_url"]
    assert shown == "https://h.example/webhooks/wavespeed?ref=wh_1&token=[redacted]"
