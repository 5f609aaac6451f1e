"""The dashboard in Debian's Chromium against real processes: live updates, real video, Replay, 1,000+ rows."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from receiver.settings import Secret, Settings
from submitter import Submitter
from tests.browser.conftest import Stack, screenshot
from tests.conftest import SECRET
from tests.support import signed_headers, wait_for

pytestmark = pytest.mark.browser

T2V = "bytedance/seedance-v1-lite-t2v-480p"
PROMPTS = [
    "a red fox running through fresh snow, golden hour",
    "waves breaking on black volcanic sand, slow motion",
    "a paper boat drifting down a rain-filled street",
    "city lights seen through a rainy train window at night",
]


def submit_jobs(stack: Stack, count: int) -> list[str]:
    """Submit through the submitter library, as a user would: recorded in the ledger, then sent with a webhook."""
    settings = Settings(
        webhook_secrets=(Secret(SECRET),),
        api_key=Secret("sandbox-key"),
        base_url=stack.sandbox_url,
        public_url=stack.url,
        db=str(stack.db),
    )
    with Submitter(settings) as submitter:
        done = [submitter.submit(T2V, {"prompt": PROMPTS[n % len(PROMPTS)], "duration": 5}) for n in range(count)]
    ids = [s.prediction_id for s in done]
    assert all(ids), done
    return [str(i) for i in ids]


def row_statuses(page: Any, ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = page.evaluate(
        "ids => Object.fromEntries(ids.map(id => [id, document.querySelector(`tr[data-id='${id}']`)?.dataset.status]))",
        ids,
    )
    return found


def test_predictions_turn_completed_without_a_reload(stack: Stack, page: Any) -> None:
    """Jobs submitted during a demo-like run show up and turn completed on the open page, which never reloads."""
    page.goto(stack.url + "/")
    page.evaluate("window.loadedOnce = true")
    ids = submit_jobs(stack, 4)
    wait_for(lambda: all(row_statuses(page, ids).values()), timeout=10, what="the submitted rows to appear")
    assert set(row_statuses(page, ids).values()) <= {"created", "processing", "completed"}
    screenshot(page, "dashboard-in-flight")
    wait_for(lambda: set(row_statuses(page, ids).values()) == {"completed"}, timeout=20, what="every row completed")
    assert page.evaluate("window.loadedOnce") is True, "the page reloaded"
    assert page.locator("#live").get_attribute("class") == "live on"
    screenshot(page, "dashboard-completed")
    assert page.errors == []


def open_video(page: Any, stack: Stack, prediction_id: str) -> Any:
    """The detail page's <video>, once it points at the kept copy (/media/{id}): the outputs section is
    swapped live when the download handler has recorded it."""
    page.goto(f"{stack.url}/predictions/{prediction_id}")
    video = page.locator("video")
    wait_for(
        lambda: video.count() == 1 and (video.get_attribute("src") or "").startswith("/media/"),
        timeout=25,
        what="the video to point at the kept copy",
    )
    return video


def test_detail_plays_the_real_mp4(stack: Stack, page: Any) -> None:
    """The detail page's <video> plays the output, served from the local copy the download handler made."""
    (prediction_id,) = submit_jobs(stack, 1)
    video = open_video(page, stack, prediction_id)
    source = video.get_attribute("src")
    answer = page.request.get(stack.url + source)
    assert answer.status == 200
    assert answer.headers["content-type"] == "video/mp4"
    assert answer.body()[4:8] == b"ftyp"
    # The browser itself decodes it: metadata loaded, with the sample's real dimensions.
    page.wait_for_function("document.querySelector('video').readyState >= 1", timeout=10_000)
    assert page.evaluate(
        "[document.querySelector('video').videoWidth, document.querySelector('video').videoHeight]"
    ) == [
        96,
        64,
    ]
    page.locator("[data-section='runs'] [data-state='succeeded']").first.wait_for()
    assert "local copy" in page.inner_text("[data-section='outputs']")
    screenshot(page, "detail-video")
    assert page.errors == []


def deliver(stack: Stack, prediction_id: str, model: str, status: str = "completed", **fields: Any) -> None:
    now = time.time()
    body = {
        "id": prediction_id,
        "model": model,
        "input": {"prompt": "a lighthouse in a storm"},
        "outputs": [f"{stack.sandbox_url}/media/outputs/none/out.mp4"] if status == "completed" else [],
        "status": status,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - fields.pop("age", 60))),
        "error": "the model timed out" if status == "failed" else "",
        "timings": {"inference": 30_000},
        **fields,
    }
    raw = json.dumps(body).encode()
    headers = signed_headers(SECRET, raw, webhook_id=f"{prediction_id}-{status}")
    response = httpx.post(stack.url + "/webhooks/wavespeed", content=raw, headers=headers)
    assert response.status_code == 200, response.text


def test_replay_makes_a_dead_run_succeed(stack: Stack, page: Any) -> None:
    """A run that died shows on the dead-letter page; after the cause is fixed, Replay makes it succeed."""
    stack.marker.touch()
    deliver(stack, "flaky-1", "test/flaky-model", outputs=[])
    page.goto(stack.url + "/dead")
    page.locator("tr[data-state='dead']").first.wait_for()
    assert "downstream service is unavailable" in page.inner_text("[data-section='dead']")
    page.goto(stack.url + "/predictions/flaky-1")
    run = page.locator("[data-section='runs'] tr[data-run]", has_text="flaky_publish")
    assert run.get_attribute("data-state") == "dead"
    screenshot(page, "detail-dead-run")
    stack.marker.unlink()
    run.get_by_role("button", name="Replay").click()
    page.locator("[data-section='runs'] tr[data-state='succeeded']", has_text="flaky_publish").wait_for()
    timeline = page.inner_text("[data-section='timeline']")
    assert "flaky_publish · attempt 1 · failed" in timeline
    assert "flaky_publish · attempt 1 · succeeded" in timeline
    screenshot(page, "detail-replayed")
    page.goto(stack.url + "/dead")
    assert "No dead runs" in page.inner_text("[data-section='dead']")
    assert page.errors == []


MODELS = [
    T2V,
    "bytedance/waver-1.0",
    "bytedance/seedance-v1-lite/reference-to-video",
    "bytedance/dreamina-v3.0/image-to-video-1080p",
    "bytedance/dreamina-v3.0-pro/text-to-video",
]


def test_page_stays_readable_with_a_thousand_predictions(receiver_factory: Callable[..., Stack], page: Any) -> None:
    """With 1,000+ predictions the page loads fast, shows 50 rows, the true totals and pagination."""
    stack = receiver_factory(downloads=False)  # outputs on an unreachable CDN: nothing to download
    rng = random.Random(11)
    with httpx.Client(base_url=stack.url) as client:
        for n in range(1000):
            status = rng.choices(["completed", "failed", "processing"], [88, 7, 5])[0]
            body = {
                "id": f"{rng.getrandbits(64):016x}",
                "model": rng.choice(MODELS),
                "input": {"prompt": PROMPTS[n % len(PROMPTS)]},
                "outputs": [f"https://cdn.example.com/{n}/output.mp4"] if status == "completed" else [],
                "status": status,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - rng.uniform(40, 200))),
                "error": "the model timed out" if status == "failed" else "",
                "timings": {"inference": rng.randint(20_000, 90_000)},
            }
            raw = json.dumps(body).encode()
            headers = signed_headers(SECRET, raw, webhook_id=f"bulk-{n}")
            assert client.post("/webhooks/wavespeed", content=raw, headers=headers).status_code == 200
    started = time.perf_counter()
    page.goto(stack.url + "/")
    loaded = time.perf_counter() - started
    assert loaded < 3.0, f"the page took {loaded:.2f} s to load"
    assert page.locator("tbody[data-section='rows'] tr[data-id]").count() == 50
    total = int(page.inner_text("[data-count='total']").replace(",", ""))
    assert total == 1000
    assert f"50 shown of {total:,}" in page.inner_text("[data-section='pager']")
    page.get_by_role("link", name="Older »").click()
    page.wait_for_url("**cursor=**")
    assert page.locator("tbody[data-section='rows'] tr[data-id]").count() == 50
    page.goto(stack.url + "/")
    page.locator("#live.on").wait_for()
    screenshot(page, "dashboard")
    page.select_option("select[name='status']", "failed")
    page.wait_for_url("**status=failed**")
    statuses = page.eval_on_selector_all("tbody tr[data-id]", "rows => rows.map(r => r.dataset.status)")
    assert statuses
    assert set(statuses) == {"failed"}
    assert page.errors == []
