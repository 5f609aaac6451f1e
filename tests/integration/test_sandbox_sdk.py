"""The provider's official SDK (package ``wavespeed``), unmodified, against a real sandbox process on loopback."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import wavespeed

from sandbox.media import SAMPLE_MP4, png
from tests.support import Process

pytestmark = pytest.mark.integration


@pytest.fixture
def sdk(sandbox_factory: Callable[..., Process]) -> Iterator[Any]:
    """An SDK client pointed at a fresh sandbox through its documented base_url option; its prints are kept."""
    sandbox = sandbox_factory()
    sdk: Any = wavespeed.Client(api_key="sandbox-key", base_url=sandbox.url, retry_interval=0.05)
    sdk.sandbox_url = sandbox.url
    with contextlib.redirect_stdout(io.StringIO()):
        yield sdk


def test_sdk_runs_a_model_to_completion_and_gets_the_result(sdk: Any) -> None:
    """run() submits, polls to completed and returns the output URL; get_result() on that task agrees."""
    output = sdk.run(
        "bytedance/seedance-v1-lite-t2v-480p", {"prompt": "a red fox in fresh snow"}, poll_interval=0.02, timeout=30
    )
    (url,) = output["outputs"]
    video = httpx.get(url)
    assert (video.headers["content-type"], video.content) == ("video/mp4", SAMPLE_MP4.read_bytes())
    listing = httpx.post(
        f"{sdk.sandbox_url}/api/v3/predictions",
        json={"page": 1, "page_size": 1},
        headers={"Authorization": "Bearer sandbox-key"},
    ).json()
    (task,) = listing["data"]["items"]
    result = sdk.get_result(task["id"])
    assert result["code"] == 200
    assert (result["data"]["status"], result["data"]["outputs"]) == ("completed", [url])


def test_sdk_uploads_a_file_and_a_model_uses_it(sdk: Any, tmp_path: Path) -> None:
    """upload() gets a ticket, PUTs the bytes and returns a download URL serving them; a model accepts it."""
    path = tmp_path / "cat.png"
    path.write_bytes(png())
    url = sdk.upload(str(path))
    download = httpx.get(url)
    assert (download.content, download.headers["content-type"]) == (png(), "image/png")
    output = sdk.run("bytedance/waver-1.0", {"image": url, "prompt": "the cat walks"}, poll_interval=0.02, timeout=30)
    assert output["outputs"][0].endswith("/output.mp4")


def test_sdk_reports_a_failed_task_and_a_refused_input(sdk: Any) -> None:
    """A task asked to fail raises the SDK's failure with the sandbox's error; invalid inputs fail the submit."""
    with pytest.raises(RuntimeError, match="asked to fail"):
        sdk.run("bytedance/dreamina-v3.0-pro/text-to-video", {"prompt": "x [sandbox:fail]"}, poll_interval=0.02)
    with pytest.raises(RuntimeError, match=r"HTTP 400.*aspect_ratio"):
        sdk.run("bytedance/dreamina-v3.0-pro/text-to-video", {"prompt": "x", "aspect_ratio": "2:1"})
