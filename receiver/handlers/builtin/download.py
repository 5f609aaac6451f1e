"""Built-in ``download_outputs``: keep each output under <model>/<prediction>/ in the media store.

The provider deletes outputs after 7 days; this copy is what outlives them. Each file is streamed into the
store (WAVEHOOK_MEDIA_DIR, or the bucket of WAVEHOOK_MEDIA_URL), checked on the way against the size cap and
content types; the store keeps all of it or nothing, so a reader never sees half a file; its size, content
type and sha256 go into the ledger's ``downloads`` table.

Every rule here holds for both stores: the address policy on every hop, identity asked for and a compressed
answer decompressed within the cap, one key prefix per prediction id, keys the store refuses when they would
leave it, one refused output not stopping the others, a retry fetching only what is not kept yet, and
refusals no retry can change ending the run at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from receiver.handlers.context import Context, Resolver
    from receiver.handlers.prediction import Prediction

import dataclasses
import fnmatch
import hashlib
import re
import urllib.parse
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import ClassVar

from receiver.handlers.builtin.addresses import AddressPolicy, RefusedURL, check_url
from receiver.handlers.errors import GiveUp
from receiver.handlers.registry import on
from receiver.media_store import MediaStore, MediaStoreError

MAX_REDIRECTS = 5
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DownloadError(Exception):
    """An output could not be kept. ``permanent`` when another attempt would get the same answer (a 4xx, a
    refused content type or size); otherwise the run is retried like any failure."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


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


def unique_segment(raw: str) -> str:
    """A path segment that no other ``raw`` maps to: ``raw`` itself when it is already safe, else its cleaned
    form with ``~`` and a digest of ``raw``. ``~`` never survives cleaning, so the two kinds never meet, and
    ``job!1`` and ``job?1`` (both ``job_1`` once cleaned) get directories (or key prefixes) of their own."""
    cleaned = safe_segment(raw, "prediction")
    if cleaned == raw:
        return raw
    return f"{cleaned}~{hashlib.sha256(raw.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


def prediction_dir(media_dir: Path, model: str | None, prediction_id: str) -> Path:
    parts = [safe_segment(part, "model") for part in (model or "unknown-model").split("/") if part]
    return media_dir.joinpath(*parts, unique_segment(prediction_id))


def output_keys(model: str | None, prediction_id: str, urls: Sequence[str]) -> list[str]:
    """The store key of each output URL: ``<model>/<prediction>/<name>``, the same for a directory or a bucket."""
    directory = prediction_dir(Path(), model, prediction_id)
    return [(directory / name).as_posix() for name in file_names(urls)]


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


class _Decoder:
    """The bytes a response encodes, at most ``PIECE`` at a time: a small gzip body may expand a thousandfold,
    and the cap must be able to stop it before it is all in memory."""

    PIECE = 256 * 1024
    _WBITS: ClassVar[dict[str, int]] = {
        "gzip": 16 + zlib.MAX_WBITS,
        "x-gzip": 16 + zlib.MAX_WBITS,
        "deflate": zlib.MAX_WBITS,
    }

    def __init__(self, encoding: str, url: str) -> None:
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            self._inflate = None
        elif encoding in self._WBITS:
            self._inflate = zlib.decompressobj(self._WBITS[encoding])
        else:
            raise DownloadError(
                f"GET {url}: content encoding {encoding!r} is not identity, gzip or deflate", permanent=True
            )
        self._url = url

    def pieces(self, raw: bytes) -> Iterator[bytes]:
        if self._inflate is None:
            yield raw
            return
        data = raw
        try:
            while data:
                piece = self._inflate.decompress(data, self.PIECE)
                if piece:
                    yield piece
                data = self._inflate.unconsumed_tail
        except zlib.error as exc:
            raise DownloadError(f"GET {self._url}: the compressed body is corrupt: {exc}") from None


async def _decoded(response: httpx.Response, url: str) -> AsyncIterator[bytes]:
    import httpx  # loaded by now: the response came from it

    try:
        already = response.content  # an answer held in memory (a test transport's), decoded by httpx
    except httpx.ResponseNotRead:
        decoder = _Decoder(response.headers.get("content-encoding", ""), url)
        async for raw in response.aiter_raw():
            for piece in decoder.pieces(raw):
                yield piece
    else:
        yield already


class _Measured:
    """The body's decoded chunks as they stream through to the store: counted against the cap and hashed,
    never held whole. Both stores pass what stops the stream on as it was raised (the S3 client too), so its
    reason and whether a retry could change it reach the handler."""

    def __init__(self, response: httpx.Response, max_bytes: int, url: str) -> None:
        self.response = response
        self.max_bytes = max_bytes
        self.url = url
        self.size = 0
        self.digest = hashlib.sha256()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in _decoded(self.response, self.url):
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise DownloadError(f"GET {self.url}: more than the cap of {self.max_bytes} bytes", permanent=True)
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
    store.check_key(key)  # before any request: a key the store refuses is refused whatever the answer
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        await check_url(current, policy, resolve)
        # Identity: a compressed answer would be expanded before any cap could count it. A server that
        # compresses anyway is decompressed piece by piece (``_Decoder``).
        headers = {"accept-encoding": "identity"}
        async with http.stream("GET", current, headers=headers, follow_redirects=False) as response:
            if response.is_redirect and "location" in response.headers:
                current = str(response.url.join(response.headers["location"]))
                continue
            if response.status_code != 200:
                status = response.status_code
                gone = 400 <= status < 500 and status not in (408, 425, 429)
                raise DownloadError(f"GET {current} answered {status}", permanent=gone)
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not _content_type_allowed(content_type, content_types):
                raise DownloadError(
                    f"GET {current}: content type {content_type or 'none'!r} is not one of {', '.join(content_types)}",
                    permanent=True,
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise DownloadError(
                    f"GET {current}: {declared} bytes exceed the cap of {max_bytes} bytes", permanent=True
                )
            body = _Measured(response, max_bytes, current)
            location = await store.save(key, body, content_type=content_type)
            return Fetched(location=location, size=body.size, sha256=body.digest.hexdigest(), content_type=content_type)
    raise DownloadError(f"GET {url}: more than {MAX_REDIRECTS} redirects", permanent=True)


@on("*", status="completed", name="download_outputs", enabled=lambda settings: settings.dispatch.download)
async def download_outputs(prediction: Prediction, ctx: Context) -> None:
    """Copy every output of a completed prediction into the media store and record its sha256.

    One output that cannot be kept does not stop the others. Outputs kept by an earlier attempt are not fetched
    again. If only refusals no retry can change remain (a URL the policy refuses, a 404, a wrong content type,
    a key the store refuses), the run gives up at once with their reasons; otherwise it is retried.
    """
    dispatch = ctx.settings.dispatch
    policy = AddressPolicy(dispatch.download_allow_loopback, dispatch.download_allow_private)
    import httpx  # loaded by now: ctx.http is its client

    kept = {stored.url for stored in ctx.downloads}  # as claimed: kept by an earlier attempt
    failures: list[str] = []
    retry = False
    for url, key in zip(
        prediction.outputs, output_keys(prediction.model, prediction.id, prediction.outputs), strict=True
    ):
        if url in kept:
            continue
        try:
            await _keep_output(ctx, url, key, policy)
        except (RefusedURL, DownloadError, MediaStoreError, httpx.HTTPError) as exc:
            permanent = getattr(exc, "permanent", False)
            retry = retry or not permanent
            failures.append(str(exc) if not isinstance(exc, httpx.HTTPError) else f"GET {url}: {exc!r}")
            ctx.logger.warning("output_not_downloaded", url=url, error=failures[-1], permanent=permanent)
    if failures:
        message = f"{len(failures)} of {len(prediction.outputs)} outputs not kept: " + "; ".join(failures)
        if retry:
            raise DownloadError(message)
        raise GiveUp(message)


async def _keep_output(ctx: Context, url: str, key: str, policy: AddressPolicy) -> None:
    dispatch = ctx.settings.dispatch
    fetched = await fetch(
        ctx.http,
        url,
        ctx.media,
        key,
        policy=policy,
        resolve=ctx.resolve,
        max_bytes=dispatch.download_max_bytes,
        content_types=dispatch.download_content_types,
    )
    await ctx.record_download(
        url=url, path=fetched.location, size=fetched.size, sha256=fetched.sha256, content_type=fetched.content_type
    )
    ctx.logger.info("output_downloaded", url=url, location=fetched.location, size=fetched.size, sha256=fetched.sha256)
