"""Uploads (ticket, PUT, download) and task outputs served by the sandbox, in process."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from sandbox.media import SAMPLE_MP4, png
from tests.sandbox.conftest import AUTH, settle, submit


def test_upload_ticket_put_and_download_round_trip(sandbox_app: Callable[..., TestClient]) -> None:
    """A ticket names a PUT URL and a download_url; the bytes PUT there come back from the download_url."""
    client = sandbox_app()
    data = b"\x89PNG fake image bytes"
    ticket = client.post("/api/v3/media/uploads", json={"filename": "cat.png", "size": len(data)}).json()["data"]
    assert ticket["upload"]["method"] == "PUT"
    assert ticket["upload"]["headers"] == {"Content-Type": "image/png"}
    assert client.get(ticket["download_url"]).status_code == 404  # nothing there before the PUT
    put = client.put(ticket["upload"]["url"], content=data, headers={"Content-Type": "image/png"})
    assert put.status_code == 200
    download = client.get(ticket["download_url"])
    assert (download.status_code, download.content, download.headers["content-type"]) == (200, data, "image/png")


def test_upload_of_another_size_than_declared_is_refused(sandbox_app: Callable[..., TestClient]) -> None:
    """A PUT with fewer or more bytes than the ticket declared answers 400 saying both sizes."""
    client = sandbox_app()
    ticket = client.post("/api/v3/media/uploads", json={"filename": "a.bin", "size": 4}).json()["data"]
    short = client.put(ticket["upload"]["url"], content=b"abc")
    assert (short.status_code, short.json()["message"]) == (400, "the ticket declared 4 bytes; 3 were sent")
    assert client.put(ticket["upload"]["url"], content=b"abcde").status_code == 400


def test_upload_ticket_checks_its_fields(sandbox_app: Callable[..., TestClient]) -> None:
    """Tickets need a file name and a size within the limit; without a key they are refused like every call."""
    client = sandbox_app(max_upload_bytes=10)
    assert client.post("/api/v3/media/uploads", json={"size": 1}).status_code == 400
    assert client.post("/api/v3/media/uploads", json={"filename": "../x", "size": 1}).status_code == 400
    assert client.post("/api/v3/media/uploads", json={"filename": "x", "size": -1}).status_code == 400
    too_big = client.post("/api/v3/media/uploads", json={"filename": "x", "size": 11})
    assert (too_big.status_code, too_big.json()["code"]) == (413, 413)
    no_key = client.post("/api/v3/media/uploads", json={"filename": "x", "size": 1}, headers={"Authorization": ""})
    assert no_key.status_code == 401


def test_video_output_is_the_sample_mp4_with_range_support(sandbox_app: Callable[..., TestClient]) -> None:
    """A completed video task's output URL serves the sample MP4 as video/mp4, and honours Range with 206."""
    client = sandbox_app()
    task = submit(client, webhook=None)
    settle(client)
    url = client.get(f"/api/v3/predictions/{task['id']}/result").json()["data"]["outputs"][0]
    full = client.get(url)
    assert (full.status_code, full.headers["content-type"]) == (200, "video/mp4")
    assert full.content == SAMPLE_MP4.read_bytes()
    assert full.headers["accept-ranges"] == "bytes"
    part = client.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.content == full.content[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(full.content)}"


def test_image_model_output_is_a_png(sandbox_app: Callable[..., TestClient]) -> None:
    """An image model's output URL ends in .png and serves the generated PNG as image/png."""
    client = sandbox_app()
    task = submit(client, "bytedance/dreamina-v3.0/text-to-image", {"prompt": "a cat"}, webhook=None)
    settle(client)
    url = client.get(f"/api/v3/predictions/{task['id']}/result").json()["data"]["outputs"][0]
    assert url.endswith("/output.png")
    response = client.get(url)
    assert (response.headers["content-type"], response.content) == ("image/png", png())


def test_no_output_before_completion_or_for_failed_tasks(sandbox_app: Callable[..., TestClient]) -> None:
    """An output URL of a task still running, or failed, or of another name answers 404."""
    client = sandbox_app(queue_seconds=5)
    running = submit(client, webhook=None)
    assert client.get(f"/media/outputs/{running['id']}/output.mp4").status_code == 404
    failed = sandbox_app()
    task = submit(failed, faults="fail", webhook=None)
    settle(failed)
    assert failed.get(f"/media/outputs/{task['id']}/output.mp4").status_code == 404
    assert failed.get(f"/media/outputs/{task['id']}/other.mp4", headers=AUTH).status_code == 404
