"""Built-in ``download_outputs``: keep each output under <model>/<prediction>/ in the media store.

The provider deletes outputs after 7 days; this copy is what outlives them. Each file is streamed into the
store (WAVEHOOK_MEDIA_DIR, or the bucket of WAVEHOOK_MEDIA_URL), checked on the way against the size cap and
content types; the store keeps all of it or nothing, so a reader never sees half a file; its size, content
type and sha256 go into the ledger's ``downloads`` table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

import dataclasses
import fnmatch
import hashlib
import re
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from receiver.handlers.builtin.addresses import AddressPolicy, check_url
from receiver.handlers.context import Context, Resolver
from receiver.handlers.prediction import Prediction
from receiver.handlers.registry import on
from receiver.media_store import MediaStore

MAX_REDIRECTS = 5
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DownloadError(Exception):
    """An output could not be kept; the run is retried like any failure."""


@dataclasses.dataclass(frozen=True, slots=True)
class Fetched:
    location: str  # a file path, or s3://bucket/key
    size: int
    sha256: str
    content_type: str


def safe_segment(raw: str, fallback: str) -> str:
    """One path segment from untrusted text: no separators, no leading dots, bounded length."""
    cleaned = _UNSAFE.sub("_", raw).strip("._")[:120]
    return cleaned or fallback


def prediction_dir(media_dir: Path, model: str | None, prediction_id: str) -> Path:
    parts = [safe_segment(part, "model") for part in (model or "unknown-model").split("/") if part]
    return media_dir.joinpath(*parts, safe_segment(prediction_id, "prediction"))


def file_names(urls: Sequence[str]) -> list[str]:
    """A safe, distinct file name per output URL, taken from the last segment of its path."""
    names: list[str] = []
    for index, url in enumerate(urls):
        last = urllib.parse.unquote(urllib.parse.urlsplit(url).path).replace("\\", "/").rsplit("/", 1)[-1]
        name = safe_segment(last, f"output-{index}")
        names.append(f"{index}-{name}" if name in names else name)
    return names


def _content_type_allowed(content_type: str, allowed: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(content_type, pattern) for pattern in allowed)


class _Measured:
    """The body's chunks as they stream through: counted against the cap and hashed, never held whole."""

    def __init__(self, response: httpx.Response, max_bytes: int, url: str) -> None:
        self.response = response
        self.max_bytes = max_bytes
        self.url = url
        self.size = 0
        self.digest = hashlib.sha256()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.response.aiter_bytes():
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise DownloadError(f"GET {self.url}: more than the cap of {self.max_bytes} bytes")
            self.digest.update(chunk)
            yield chunk


async def fetch(
    http: httpx.AsyncClient,
    url: str,
    store: MediaStore,
    key: str,
    *,
    policy: AddressPolicy,
    resolve: Resolver,
    max_bytes: int,
    content_types: Sequence[str],
) -> Fetched:
    """Stream ``url`` into ``store`` under ``key``, following redirects only to URLs that pass the same checks."""
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        await check_url(current, policy, resolve)
        async with http.stream("GET", current, follow_redirects=False) as response:
            if response.is_redirect and "location" in response.headers:
                current = str(response.url.join(response.headers["location"]))
                continue
            if response.status_code != 200:
                raise DownloadError(f"GET {current} answered {response.status_code}")
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not _content_type_allowed(content_type, content_types):
                raise DownloadError(
                    f"GET {current}: content type {content_type or 'none'!r} is not one of {', '.join(content_types)}"
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise DownloadError(f"GET {current}: {declared} bytes exceed the cap of {max_bytes} bytes")
            body = _Measured(response, max_bytes, current)
            location = await store.save(key, body, content_type=content_type)
            return Fetched(location=location, size=body.size, sha256=body.digest.hexdigest(), content_type=content_type)
    raise DownloadError(f"GET {url}: more than {MAX_REDIRECTS} redirects")


@on("*", status="completed", name="download_outputs", enabled=lambda settings: settings.dispatch.download)
async def download_outputs(prediction: Prediction, ctx: Context) -> None:
    """Copy every output of a completed prediction into the media directory and record its sha256."""
    dispatch = ctx.settings.dispatch
    policy = AddressPolicy(dispatch.download_allow_loopback, dispatch.download_allow_private)
    directory = prediction_dir(Path(), prediction.model, prediction.id)
    for url, name in zip(prediction.outputs, file_names(prediction.outputs), strict=True):
        fetched = await fetch(
            ctx.http,
            url,
            ctx.media,
            (directory / name).as_posix(),
            policy=policy,
            resolve=ctx.resolve,
            max_bytes=dispatch.download_max_bytes,
            content_types=dispatch.download_content_types,
        )
        await ctx.record_download(
            url=url,
            path=fetched.location,
            size=fetched.size,
            sha256=fetched.sha256,
            content_type=fetched.content_type,
        )
        ctx.logger.info(
            "output_downloaded", url=url, location=fetched.location, size=fetched.size, sha256=fetched.sha256
        )
