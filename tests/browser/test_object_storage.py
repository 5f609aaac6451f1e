"""The dashboard plays an output kept in object storage: Chromium follows /media/{id} to a presigned URL of a
real S3 server on loopback and decodes the video from the bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Stack, screenshot
from tests.browser.test_dashboard import open_video, submit_jobs
from tests.s3_server import Bucket
from tests.support import running, wait_for

pytestmark = pytest.mark.browser


def test_detail_plays_the_copy_in_the_bucket(tmp_path: Path, bucket: Bucket, page: Any) -> None:
    """With WAVEHOOK_MEDIA_URL, the download lands in the bucket and the detail page's <video> plays it from
    there: /media/{id} redirects to the presigned URL, and the browser decodes the real MP4 it serves."""
    stack = Stack(tmp_path, env=bucket.env())
    with running(stack.sandbox(), f"{stack.sandbox_url}/healthz"), running(stack.receiver(), f"{stack.url}/healthz"):
        fetched: list[tuple[str, int]] = []
        page.on("response", lambda response: fetched.append((response.url, response.status)))
        (prediction_id,) = submit_jobs(stack, 1)
        open_video(page, stack, prediction_id)
        # Polled from here: the page's CSP (no eval) refuses the string predicates wait_for_function would run.
        wait_for(
            lambda: page.evaluate("document.querySelector('video').readyState") >= 1,
            timeout=15,
            what="the browser to load the video's metadata from the bucket",
        )
        size = page.evaluate("[...document.querySelectorAll('video')].map(v => [v.videoWidth, v.videoHeight])[0]")
        page.locator("[data-section='runs'] [data-state='succeeded']").first.wait_for()
        assert "copy in object storage" in page.inner_text("[data-section='outputs']")
        screenshot(page, "detail-video-object-storage")
        assert page.errors == []
    assert size == [96, 64]
    from_bucket = [status for url, status in fetched if url.startswith(f"{bucket.server.url}/{bucket.name}/")]
    assert from_bucket, fetched
    assert set(from_bucket) <= {200, 206}
    assert any(url.startswith(f"{stack.url}/media/") and status == 307 for url, status in fetched)
    (key,) = bucket.objects()
    assert key.startswith(f"outputs/bytedance/seedance-v1-lite-t2v-480p/{prediction_id}/")
    assert not (tmp_path / "media").exists()
