"""Outputs in S3-compatible object storage: the download handler through obstore against a real S3 server."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from receiver.errors import ConfigError
from receiver.handlers.registry import load_handlers
from receiver.http.app import create_app
from receiver.media_store import CHUNK_BYTES, LocalMedia, MediaStoreError, S3Media, open_media_store
from receiver.settings import DispatchSettings, Settings
from tests.receiver.dispatch_support import MODEL, harness, run
from tests.s3_server import SECRET_KEY, Bucket

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
PUBLIC = {"cdn.example.com": ["93.184.215.14"]}


async def _public(host: str, _port: int) -> list[str]:
    return PUBLIC[host]


def _s3_settings(settings_factory: Callable[..., Settings], bucket: Bucket, **dispatch: object) -> Settings:
    base = Settings.from_env({"WAVESPEED_WEBHOOK_SECRET": "whsec_x", **bucket.env()})
    return settings_factory(
        media_url=base.media_url, aws=base.aws, dispatch=DispatchSettings(log_outcomes=False, **dispatch)
    )


def _download(settings: Settings, cdn: Callable[[httpx.Request], httpx.Response], outputs: list[str]) -> object:
    """Deliver a completed prediction ``p1`` with ``outputs`` and run its download once; the dispatcher's counts."""

    async def scenario() -> object:
        async with harness(settings, load_handlers(settings), transport=httpx.MockTransport(cdn)) as h:
            await h.deliver("p1", outputs=outputs)
            counts = await h.dispatcher(resolve=_public).run_once()
            return counts, h.query("SELECT * FROM downloads ORDER BY id"), h.runs()

    return run(scenario())


def test_media_url_must_be_an_s3_url() -> None:
    """WAVEHOOK_MEDIA_URL names the scheme it needs; unset keeps the local directory."""
    env: Mapping[str, str] = {"WAVESPEED_WEBHOOK_SECRET": "whsec_x"}
    for bad in ("https://bucket.example.com/x", "s3://", "/var/media"):
        with pytest.raises(ConfigError, match="is not an s3://bucket/prefix URL"):
            Settings.from_env({**env, "WAVEHOOK_MEDIA_URL": bad})
    assert isinstance(open_media_store(Settings.from_env(env)), LocalMedia)
    settings = Settings.from_env({**env, "WAVEHOOK_MEDIA_URL": "s3://b/p/", "AWS_SECRET_ACCESS_KEY": SECRET_KEY})
    assert settings.media_url == "s3://b/p"
    assert SECRET_KEY not in repr(settings)


def test_outputs_go_to_the_bucket_with_their_sha256_recorded(
    settings_factory: Callable[..., Settings], bucket: Bucket
) -> None:
    """With WAVEHOOK_MEDIA_URL, a completed prediction's output is an object under prefix/<model>/<prediction>/,
    with its content type; the ledger records its s3:// location, size and sha256; nothing is written locally."""
    settings = _s3_settings(settings_factory, bucket)
    cdn = lambda _r: httpx.Response(200, headers={"content-type": "video/mp4"}, content=VIDEO)  # noqa: E731
    counts, rows, _runs = _download(settings, cdn, ["https://cdn.example.com/p1/output.mp4"])  # type: ignore[misc]
    assert counts.succeeded == 1
    key = f"outputs/{MODEL}/p1/output.mp4"
    (row,) = rows
    assert (row["path"], row["size"], row["sha256"], row["content_type"]) == (
        f"s3://{bucket.name}/{key}",
        len(VIDEO),
        hashlib.sha256(VIDEO).hexdigest(),
        "video/mp4",
    )
    assert list(bucket.objects()) == [key]
    stored = bucket.read(key)
    assert (stored.content, stored.headers["content-type"]) == (VIDEO, "video/mp4")
    assert not settings.media_dir.exists()


def test_a_large_output_is_streamed_in_parts(settings_factory: Callable[..., Settings], bucket: Bucket) -> None:
    """An output bigger than one part goes up as a multipart upload (ETag ``…-N``), chunk by chunk as it arrives."""
    chunk = bytes(range(256)) * 4096  # 1 MiB
    count = 2 * CHUNK_BYTES // len(chunk) + 3  # two full parts and a bit

    async def body() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield chunk

    cdn = lambda _r: httpx.Response(200, headers={"content-type": "video/mp4"}, content=body())  # noqa: E731
    counts, rows, _runs = _download(_s3_settings(settings_factory, bucket), cdn, ["https://cdn.example.com/p1/big.mp4"])  # type: ignore[misc]
    assert counts.succeeded == 1
    (row,) = rows
    expected = hashlib.sha256(chunk * count).hexdigest()
    assert (row["size"], row["sha256"]) == (len(chunk) * count, expected)
    (listed,) = bucket.objects().values()
    assert listed["size"] == str(len(chunk) * count)
    assert listed["etag"].strip('"').endswith("-3")
    assert hashlib.sha256(bucket.read(f"outputs/{MODEL}/p1/big.mp4").content).hexdigest() == expected


def test_over_the_cap_or_the_wrong_type_leaves_nothing_in_the_bucket(
    settings_factory: Callable[..., Settings], bucket: Bucket
) -> None:
    """The size cap (counted as the bytes stream) and the content-type rule hold for object storage: the run
    fails with the reason, and neither an object nor an unfinished multipart upload is left behind."""
    part = b"\x01" * (CHUNK_BYTES + 1024)

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield part

    def cdn(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(".html"):
            return httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>")
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=endless())

    settings = _s3_settings(settings_factory, bucket, download_max_bytes=2 * CHUNK_BYTES, max_attempts=1)
    counts, rows, runs = _download(settings, cdn, ["https://cdn.example.com/p1/huge.mp4"])  # type: ignore[misc]
    assert (counts.dead, rows) == (1, [])
    assert f"more than the cap of {2 * CHUNK_BYTES} bytes" in runs[0]["last_error"]
    settings = settings.replace(db=str(settings.db_path.with_name("second.db")))
    counts, rows, runs = _download(settings, cdn, ["https://cdn.example.com/p1/page.html"])  # type: ignore[misc]
    assert (counts.dead, rows) == (1, [])
    assert "content type 'text/html' is not one of" in runs[0]["last_error"]
    assert bucket.objects() == {}
    assert bucket.pending_uploads() == []


def test_an_unreachable_bucket_fails_the_run_without_the_secret(
    settings_factory: Callable[..., Settings], bucket: Bucket
) -> None:
    """A bucket that does not exist fails the attempt (to be retried) with the location in the error, never
    the secret access key."""
    settings = _s3_settings(settings_factory, bucket)
    settings = settings.replace(media_url=f"s3://{bucket.name}-missing/outputs")
    cdn = lambda _r: httpx.Response(200, headers={"content-type": "video/mp4"}, content=VIDEO)  # noqa: E731
    counts, rows, runs = _download(settings, cdn, ["https://cdn.example.com/p1/output.mp4"])  # type: ignore[misc]
    assert (counts.retried, rows) == (1, [])
    assert f"s3://{bucket.name}-missing/outputs/{MODEL}/p1/output.mp4" in runs[0]["last_error"]
    assert SECRET_KEY not in runs[0]["last_error"]


def test_the_dashboard_plays_the_stored_copy_from_the_bucket(
    settings_factory: Callable[..., Settings], bucket: Bucket
) -> None:
    """GET /media/{id} of an object redirects to a short-lived presigned URL; the store answers it, Range too."""
    settings = _s3_settings(settings_factory, bucket)
    cdn = lambda _r: httpx.Response(200, headers={"content-type": "video/mp4"}, content=VIDEO)  # noqa: E731
    _download(settings, cdn, ["https://cdn.example.com/p1/output.mp4"])
    with TestClient(create_app(settings), base_url="http://127.0.0.1", client=("127.0.0.1", 5000)) as client:
        answer = client.get("/media/1", follow_redirects=False)
        missing = client.get("/media/2", follow_redirects=False)
    assert answer.status_code == 307, answer.text
    link = answer.headers["location"]
    assert link.startswith(f"{bucket.server.url}/{bucket.name}/outputs/")
    assert "X-Amz-Signature=" in link
    assert "X-Amz-Expires=3600" in link
    assert SECRET_KEY not in link
    ranged = httpx.get(link, headers={"Range": "bytes=0-15"})
    assert (ranged.status_code, ranged.content, ranged.headers["content-type"]) == (206, VIDEO[:16], "video/mp4")
    assert missing.status_code == 404


def test_a_stored_location_outside_the_configured_bucket_is_not_signed(bucket: Bucket, tmp_path: Path) -> None:
    """The store signs only locations under its own URL: a ledger row naming another bucket is refused."""
    settings = Settings.from_env({"WAVESPEED_WEBHOOK_SECRET": "whsec_x", **bucket.env()})
    store = open_media_store(settings)
    assert isinstance(store, S3Media)
    with pytest.raises(MediaStoreError, match="is not under WAVEHOOK_MEDIA_URL"):
        run(store.share("s3://someone-else/outputs/x.mp4"))
    assert run(LocalMedia(tmp_path).share(str(tmp_path / "x.mp4"))) is None


# The download handler's other security rules are run on both stores in tests/receiver/handlers/test_download.py.


def test_a_compression_bomb_is_refused_at_once_and_leaves_no_upload(
    settings_factory: Callable[..., Settings], bucket: Bucket
) -> None:
    """Identity is asked for; a gzip answer is decompressed piece by piece on its way to the bucket. One that
    expands past the cap ends the run at its first attempt (the cap's refusal keeps its reason through the
    S3 client), with neither an object nor an unfinished multipart upload left; one within the cap is kept
    decompressed."""
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    asked: list[str | None] = []

    async def network(data: bytes) -> AsyncIterator[bytes]:  # as the bytes arrive from a socket
        for start in range(0, len(data), 16_384):
            yield data[start : start + 16_384]

    def cdn(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("accept-encoding"))
        data = bomb if request.url.path.endswith("bomb.mp4") else gzip.compress(VIDEO)
        headers = {"content-type": "video/mp4", "content-encoding": "gzip"}
        return httpx.Response(200, headers=headers, content=network(data))

    settings = _s3_settings(settings_factory, bucket, download_max_bytes=CHUNK_BYTES + 1, max_attempts=5)
    counts, rows, runs = _download(settings, cdn, ["https://cdn.example.com/p1/bomb.mp4"])  # type: ignore[misc]
    assert (counts.dead, counts.retried, rows) == (1, 0, [])
    assert runs[0]["attempts"] == 1
    assert f"more than the cap of {CHUNK_BYTES + 1} bytes" in runs[0]["last_error"]
    assert bucket.objects() == {}
    assert bucket.pending_uploads() == []

    settings = settings.replace(db=str(settings.db_path.with_name("second.db")))
    counts, rows, _runs = _download(settings, cdn, ["https://cdn.example.com/p1/small.mp4"])  # type: ignore[misc]
    assert counts.succeeded == 1
    (row,) = rows
    assert (row["size"], row["sha256"]) == (len(VIDEO), hashlib.sha256(VIDEO).hexdigest())
    assert bucket.read(f"outputs/{MODEL}/p1/small.mp4").content == VIDEO
    assert asked == ["identity", "identity"]


@pytest.mark.parametrize("key", ["../escape.mp4", "m/../../escape.mp4", "m//x.mp4", "/abs.mp4", "m/.", "m\\..\\x"])
def test_both_stores_refuse_a_key_that_would_leave_them_for_good(bucket: Bucket, tmp_path: Path, key: str) -> None:
    """The media store interface refuses a key that could name a place outside its directory or prefix, before
    anything is fetched and again when saving, as a refusal no retry can change."""
    settings = Settings.from_env({"WAVESPEED_WEBHOOK_SECRET": "whsec_x", **bucket.env()})

    async def one_chunk() -> AsyncIterator[bytes]:
        yield VIDEO

    for store in (open_media_store(settings), LocalMedia(tmp_path / "media")):
        with pytest.raises(MediaStoreError, match="would leave the media") as refused:
            store.check_key(key)
        assert refused.value.permanent
        with pytest.raises(MediaStoreError, match="would leave the media"):
            run(store.save(key, one_chunk(), content_type="video/mp4"))
    assert bucket.objects() == {}
    assert not any(tmp_path.rglob("*.mp4"))


def test_a_link_out_of_the_media_directory_is_refused_for_good(tmp_path: Path) -> None:
    """A directory inside WAVEHOOK_MEDIA_DIR that links elsewhere cannot carry an output out of it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "model").symlink_to(outside, target_is_directory=True)
    with pytest.raises(MediaStoreError, match="would leave the media directory") as refused:
        LocalMedia(tmp_path / "media").check_key("model/p1/out.mp4")
    assert refused.value.permanent
