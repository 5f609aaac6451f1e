"""The download_outputs built-in: safe paths, address policy, size and type checks, sha256 in the ledger."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import ipaddress
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from receiver.handlers.builtin.addresses import AddressPolicy, RefusedURL, check_url
from receiver.handlers.builtin.download import DownloadError, fetch, file_names, prediction_dir
from receiver.handlers.registry import load_handlers
from receiver.media_store import LocalMedia
from receiver.settings import DispatchSettings, Settings
from tests.receiver.dispatch_support import MODEL, harness, run
from tests.s3_server import Bucket

# Runs on every ledger backend (SQLite, PostgreSQL): see ``settings_factory``.
pytestmark = pytest.mark.usefixtures("backend")

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


def _resolver(table: dict[str, list[str]]) -> Callable[[str, int], object]:
    async def resolve(host: str, _port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


PUBLIC = _resolver({"cdn.example.com": ["93.184.215.14"], "inside.example.com": ["10.1.2.3"]})


class Store:
    """One of the two media stores for a handler test: its settings, and the bytes a recorded location holds."""

    def __init__(self, settings_factory: Callable[..., Settings], bucket: Bucket | None) -> None:
        self.settings_factory = settings_factory
        self.bucket = bucket

    def make(self, **dispatch: Any) -> Settings:
        """Settings for this store (WAVEHOOK_MEDIA_URL and the AWS variables for the bucket), ``dispatch`` set."""
        env = self.bucket.env() if self.bucket else {}
        base = Settings.from_env({"WAVESPEED_WEBHOOK_SECRET": "whsec_x", **env})
        return self.settings_factory(
            media_url=base.media_url, aws=base.aws, dispatch=DispatchSettings(log_outcomes=False, **dispatch)
        )

    def read(self, location: object) -> bytes:
        if self.bucket is None:
            return Path(str(location)).read_bytes()
        prefix = f"s3://{self.bucket.name}/"
        assert str(location).startswith(prefix), location
        return self.bucket.read(str(location).removeprefix(prefix)).content


@pytest.fixture(params=["directory", "bucket"])
def store(request: pytest.FixtureRequest, settings_factory: Callable[..., Settings]) -> Store:
    """The security rules of download_outputs hold for both stores: WAVEHOOK_MEDIA_DIR and WAVEHOOK_MEDIA_URL."""
    return Store(settings_factory, request.getfixturevalue("bucket") if request.param == "bucket" else None)


def test_file_names_cannot_leave_the_prediction_directory(tmp_path: Path) -> None:
    """Names come from the URL's last path segment, cleaned: no traversal, no hidden files, no clashes."""
    urls = [
        "https://cdn.example.com/a/../../etc/passwd",
        "https://cdn.example.com/x/%2e%2e%2f%2e%2e%2fescape.mp4",
        "https://cdn.example.com/x/..%5c..%5cwin.mp4",
        "https://cdn.example.com/x/video.mp4",
        "https://cdn.example.com/y/video.mp4",
        "https://cdn.example.com/",
        "https://cdn.example.com/x/.hidden",
    ]
    assert file_names(urls) == ["passwd", "escape.mp4", "win.mp4", "video.mp4", "4-video.mp4", "output-5", "hidden"]
    directory = prediction_dir(tmp_path, "bytedance/../../seedance", "../p1")
    assert directory.resolve().is_relative_to(tmp_path.resolve())
    assert directory.parent == tmp_path / "bytedance" / "model" / "model" / "seedance"
    assert directory.name.startswith("p1~")  # cleaned, and told apart from a prediction really named p1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://cdn.example.com/a.mp4", "only http and https"),
        ("http://127.0.0.1:8000/a.mp4", "loopback"),
        ("http://[::1]/a.mp4", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::ffff:169.254.169.254]/x", "link-local"),
        ("http://192.168.1.10/a.mp4", "private"),
        ("http://100.100.100.200/latest/meta-data", "cloud metadata"),
        ("https://inside.example.com/a.mp4", "10.1.2.3, a private or otherwise non-global address"),
        ("https://nowhere.example.com/a.mp4", "does not resolve"),
        ("http://0.0.0.0/a.mp4", "unspecified"),
    ],
)
def test_urls_outside_the_policy_are_refused(url: str, reason: str) -> None:
    """Non-http(s) schemes and loopback, private, link-local or unresolvable hosts are refused by default."""
    with pytest.raises(RefusedURL, match=reason):
        asyncio.run(check_url(url, AddressPolicy(), PUBLIC))  # type: ignore[arg-type]


def test_the_policy_can_allow_loopback_and_private_but_never_link_local() -> None:
    """The two switches open loopback and private ranges; the metadata range stays closed."""
    policy = AddressPolicy(allow_loopback=True, allow_private=True)
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("10.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("169.254.169.254")) == "a link-local or cloud metadata address"
    assert asyncio.run(check_url("https://cdn.example.com/a.mp4", AddressPolicy(), PUBLIC)).host == "cdn.example.com"  # type: ignore[arg-type]


def _fetch(handler: Callable[[httpx.Request], httpx.Response], dest: Path, **options: object) -> object:
    async def go() -> object:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await fetch(
                http,
                str(options.pop("url", "https://cdn.example.com/p1/out.mp4")),
                LocalMedia(dest.parent),
                dest.name,
                policy=AddressPolicy(),
                resolve=PUBLIC,  # type: ignore[arg-type]
                max_bytes=int(options.pop("max_bytes", 1_000_000)),  # type: ignore[call-overload]
                content_types=("video/*", "image/*"),
            )

    return asyncio.run(go())


def test_a_file_over_the_cap_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    """A declared or streamed size over the cap fails the attempt, and no partial file remains."""
    dest = tmp_path / "m" / "out.mp4"
    declared = lambda _r: httpx.Response(200, headers={"content-type": "video/mp4"}, content=VIDEO)  # noqa: E731
    with pytest.raises(DownloadError, match="exceed the cap of 100 bytes"):
        _fetch(declared, dest, max_bytes=100)

    async def chunks() -> AsyncIterator[bytes]:
        yield VIDEO[:80]
        yield VIDEO[80:]

    def streamed(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=chunks())  # no Content-Length

    with pytest.raises(DownloadError, match="more than the cap of 100 bytes"):
        _fetch(streamed, dest, max_bytes=100)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_a_wrong_content_type_is_refused(tmp_path: Path) -> None:
    """An HTML page where a video was expected is not kept."""
    page = lambda _r: httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>")  # noqa: E731
    with pytest.raises(DownloadError, match="content type 'text/html' is not one of video/\\*, image/\\*"):
        _fetch(page, tmp_path / "out.mp4")


def test_a_redirect_to_a_private_address_is_refused(tmp_path: Path) -> None:
    """Each redirect hop passes the same address checks as the first URL."""
    hop = lambda _r: httpx.Response(302, headers={"location": "http://10.0.0.5/secret"})  # noqa: E731
    with pytest.raises(RefusedURL, match="private"):
        _fetch(hop, tmp_path / "out.mp4")


def test_outputs_are_kept_with_their_sha256_recorded(settings_factory: Callable[..., Settings]) -> None:
    """A completed prediction's outputs land under media/<model>/<prediction>/ and in the downloads table."""
    requested: list[str] = []

    def cdn(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        if request.url.path == "/p1/moved.mp4":
            return httpx.Response(301, headers={"location": "/p1/output.mp4"})
        return httpx.Response(200, headers={"content-type": "video/mp4; codecs=avc1"}, content=VIDEO)

    settings = settings_factory(dispatch=DispatchSettings(log_outcomes=False))
    outputs = ["https://cdn.example.com/p1/output.mp4", "https://cdn.example.com/p1/moved.mp4"]

    async def scenario() -> list[dict[str, object]]:
        async with harness(settings, load_handlers(settings), transport=httpx.MockTransport(cdn)) as h:
            await h.deliver("p1", outputs=outputs)
            counts = await h.dispatcher(resolve=PUBLIC).run_once()
            assert counts.succeeded == 1, h.attempts(1)
            return h.query("SELECT * FROM downloads ORDER BY id")

    rows = run(scenario())
    assert [r["url"] for r in rows] == outputs
    for row in rows:
        assert row["sha256"] == hashlib.sha256(VIDEO).hexdigest()
        assert row["size"] == len(VIDEO)
        assert row["content_type"] == "video/mp4"
        assert Path(str(row["path"])).read_bytes() == VIDEO
    directory = settings.media_dir / MODEL / "p1"
    assert sorted(p.name for p in directory.iterdir()) == ["moved.mp4", "output.mp4"]
    assert requested[-1] == "https://cdn.example.com/p1/output.mp4"


@pytest.mark.parametrize(
    "address",
    ["100.64.0.1", "100.127.255.254", "192.0.0.8", "198.18.0.1", "192.0.2.1", "240.0.0.1", "fc00::1", "2001:db8::1"],
)
def test_every_address_that_is_not_global_is_refused_by_default(address: str) -> None:
    """Carrier-grade NAT (Tailscale), IETF protocol assignments, benchmarking, documentation, reserved and unique
    local ranges are refused like private ones: only globally routable addresses are fetched."""
    refusal = AddressPolicy().refusal(ipaddress.ip_address(address))
    assert refusal is not None
    assert AddressPolicy(allow_private=True).refusal(ipaddress.ip_address(address)) is None or "reserved" in refusal


@pytest.mark.parametrize("address", ["169.254.169.254", "100.100.100.200", "fd00:ec2::254", "::ffff:100.100.100.200"])
def test_metadata_services_are_refused_whatever_the_settings(address: str) -> None:
    """The cloud metadata endpoints (AWS, GCP, Azure, Alibaba Cloud, AWS over IPv6) are never fetched."""
    policy = AddressPolicy(allow_loopback=True, allow_private=True)
    assert policy.refusal(ipaddress.ip_address(address)) is not None


def test_a_compressed_response_is_decompressed_within_the_cap(tmp_path: Path) -> None:
    """Identity is asked for; a server that gzips anyway (64 MiB of zeros in 64 kB) is decompressed piece by
    piece and refused past the cap, without ever holding the whole expansion in memory."""
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    asked: list[str | None] = []

    async def network() -> AsyncIterator[bytes]:  # as the bytes arrive from a socket, 16 kB at a time
        for start in range(0, len(bomb), 16_384):
            yield bomb[start : start + 16_384]

    def cdn(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("accept-encoding"))
        return httpx.Response(200, headers={"content-type": "video/mp4", "content-encoding": "gzip"}, content=network())

    tracemalloc.start()
    try:
        with pytest.raises(DownloadError, match="more than the cap of 1048576 bytes"):
            _fetch(cdn, tmp_path / "out.mp4", max_bytes=1024 * 1024)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert asked == ["identity"]
    assert peak < 16 * 1024 * 1024


def test_a_gzipped_output_within_the_cap_is_kept_decompressed(tmp_path: Path) -> None:
    """A gzip-encoded answer is stored as the file it encodes."""

    async def network() -> AsyncIterator[bytes]:
        yield gzip.compress(VIDEO)

    cdn = lambda _r: httpx.Response(  # noqa: E731
        200, headers={"content-type": "video/mp4", "content-encoding": "gzip"}, content=network()
    )
    fetched = _fetch(cdn, tmp_path / "out.mp4")
    assert (tmp_path / "out.mp4").read_bytes() == VIDEO
    assert fetched.size == len(VIDEO)  # type: ignore[attr-defined]


@given(st.lists(st.text(max_size=140), min_size=2, max_size=6, unique=True))
def test_distinct_prediction_ids_never_share_a_directory(ids: list[str]) -> None:
    """The mapping from prediction id to directory is injective, whatever characters or lengths the ids hold."""
    directories = {prediction_dir(Path("/media"), MODEL, prediction_id) for prediction_id in ids}
    assert len(directories) == len(ids)


def test_ids_that_clean_to_the_same_name_keep_their_own_files(store: Store) -> None:
    """`job!1` and `job?1` both clean to `job_1`: each output still lands in its own place (file or object), and
    each copy holds its own prediction's bytes."""
    bodies = {"job!1": b"first video", "job?1": b"second video"}

    def cdn(request: httpx.Request) -> httpx.Response:
        owner = "job!1" if request.url.path.startswith("/a/") else "job?1"
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=bodies[owner])

    settings = store.make()

    async def scenario() -> list[dict[str, object]]:
        async with harness(settings, load_handlers(settings), transport=httpx.MockTransport(cdn)) as h:
            await h.deliver("job!1", outputs=["https://cdn.example.com/a/output.mp4"])
            await h.deliver("job?1", outputs=["https://cdn.example.com/b/output.mp4"])
            counts = await h.dispatcher(resolve=PUBLIC).run_once()
            assert counts.succeeded == 2
            return h.query("SELECT prediction_id, path FROM downloads ORDER BY id")

    rows = run(scenario())
    assert len({row["path"] for row in rows}) == 2
    for row in rows:
        assert store.read(row["path"]) == bodies[str(row["prediction_id"])]


def test_a_refused_output_fails_the_run_at_once_and_the_others_are_kept(store: Store) -> None:
    """A loopback output URL (refused by configuration) does not stop the prediction's other outputs from being
    saved, and the run dies at its first attempt with the reason, instead of being retried as if transient."""
    cdn = lambda _r: httpx.Response(200, headers={"content-type": "video/mp4"}, content=VIDEO)  # noqa: E731
    settings = store.make(max_attempts=5)
    outputs = ["http://127.0.0.1:9/p1/local.mp4", "https://cdn.example.com/p1/kept.mp4"]

    async def scenario() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        async with harness(settings, load_handlers(settings), transport=httpx.MockTransport(cdn)) as h:
            await h.deliver("p1", outputs=outputs)
            counts = await h.dispatcher(resolve=PUBLIC).run_once()
            assert (counts.dead, counts.retried) == (1, 0)
            return h.query("SELECT url, path FROM downloads"), h.runs()

    downloads, runs = run(scenario())
    assert [row["url"] for row in downloads] == ["https://cdn.example.com/p1/kept.mp4"]
    assert store.read(downloads[0]["path"]) == VIDEO
    (run_row,) = runs
    assert (run_row["state"], run_row["attempts"]) == ("dead", 1)
    assert "WAVEHOOK_DOWNLOAD_ALLOW_LOOPBACK" in str(run_row["last_error"])


def test_a_transient_failure_retries_only_the_outputs_not_yet_kept(store: Store) -> None:
    """A 503 on one output retries the run; the retry fetches only that output, the other one is kept once."""
    requested: list[str] = []

    def cdn(request: httpx.Request) -> httpx.Response:
        requested.append(request.url.path)
        if request.url.path == "/p1/flaky.mp4" and requested.count("/p1/flaky.mp4") == 1:
            return httpx.Response(503)
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=VIDEO)

    settings = store.make(retry_base_seconds=0.01)
    outputs = ["https://cdn.example.com/p1/flaky.mp4", "https://cdn.example.com/p1/steady.mp4"]

    async def scenario() -> list[dict[str, object]]:
        async with harness(settings, load_handlers(settings), transport=httpx.MockTransport(cdn)) as h:
            await h.deliver("p1", outputs=outputs)
            first = await h.dispatcher(resolve=PUBLIC).run_once()
            h.clock.advance(60)
            second = await h.dispatcher(resolve=PUBLIC).run_once()
            assert (first.retried, second.succeeded) == (1, 1)
            return h.query("SELECT url, path FROM downloads ORDER BY url")

    rows = run(scenario())
    assert [row["url"] for row in rows] == sorted(outputs)
    assert [store.read(row["path"]) for row in rows] == [VIDEO, VIDEO]
    assert requested == ["/p1/flaky.mp4", "/p1/steady.mp4", "/p1/flaky.mp4"]
