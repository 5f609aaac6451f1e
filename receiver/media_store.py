"""Where ``download_outputs`` keeps outputs: a local directory (the default) or S3-compatible object storage.

Both stores take a stream of chunks and keep all of it or nothing: the local one writes a temporary file,
fsyncs and renames it; the S3 one sends a multipart upload that becomes visible only when it completes and
is aborted when the stream fails (over the size cap, a dropped connection). The caller measures the stream
(size, sha256, the cap); a store only puts the bytes somewhere and says where (the *location* the ledger
records: a file path, or ``s3://bucket/prefix/key``).

The S3 client is obstore (Python bindings of the Rust ``object_store`` crate, the one Apache Arrow and
DataFusion use). Why it and not boto3, aioboto3 or s3fs: it is asyncio-native (boto3 blocks, so every call
would need a thread, and the dispatcher shares the web process's event loop); it streams an async iterator
as a multipart upload with bounded concurrency, so a video never sits in memory whole; it presigns URLs;
it speaks to any S3-compatible store (R2, MinIO, GCS's S3 API) through ``AWS_ENDPOINT_URL``; it finds
container, instance and web-identity credentials by itself; it ships type stubs (mypy strict); and it is
one wheel with no dependencies, where boto3 brings botocore (32 MB installed, against obstore's 16 MB) and
aioboto3/s3fs add aiohttp or fsspec on top.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import secrets
from collections.abc import AsyncIterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from receiver.errors import ConfigError, WavehookError
from receiver.settings import Settings

if TYPE_CHECKING:
    from obstore.store import S3Store

# How long a dashboard link to a stored object stays valid: long enough to watch and seek through a video.
SHARE_SECONDS = 3600
# Multipart part size and the parts in flight at once: at most CHUNK_BYTES * CONCURRENCY buffered per upload.
CHUNK_BYTES = 8 * 1024 * 1024
CONCURRENCY = 2


class MediaStoreError(WavehookError):
    """An output could not be stored. ``permanent`` when no retry can change it (a key that would leave the
    store); otherwise (the store refused or could not be reached) the run is retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class MediaStore(Protocol):
    """Keeps downloaded outputs. ``key`` is a relative, ``/``-separated path of safe segments.

    Every store refuses, permanently, a key that would leave it (``check_key``: before anything is fetched,
    and again in ``save``), so the download handler's path rules hold wherever the outputs go.
    """

    description: str  # where outputs go, for logs; never a credential

    def check_key(self, key: str) -> None:
        """Raise a permanent ``MediaStoreError`` when ``key`` would not stay inside this store."""
        ...

    async def save(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str) -> str:
        """Store every chunk under ``key``, all or nothing, and return the location the ledger records."""
        ...

    async def share(self, location: str) -> str | None:
        """A short-lived URL a browser may fetch ``location`` from; None when the dashboard serves it itself."""
        ...


def key_segments(key: str) -> list[str]:
    """The segments of ``key``, refused (permanently) when one is empty, ``.`` or ``..``, or holds a backslash or
    a NUL: such a key could name a place outside the directory or prefix, or a different object than meant."""
    segments = key.split("/")
    for segment in segments:
        if segment in ("", ".", "..") or "\\" in segment or "\0" in segment:
            raise MediaStoreError(f"{key!r} would leave the media store", permanent=True)
    return segments


def _summary(exc: Exception) -> str:
    """The first line of an object-store error: its multi-line debug dump would fill the dashboard."""
    first = str(exc).split("\n", 1)[0].split(" Debug source:", 1)[0].strip()
    return f"{type(exc).__name__}: {first[:500]}"


def _sync_and_close(out: BinaryIO) -> None:
    with out:
        out.flush()
        os.fsync(out.fileno())


class LocalMedia:
    """Outputs as files under one directory (WAVEHOOK_MEDIA_DIR); the dashboard serves them itself."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = str(root)

    def path_for(self, key: str) -> Path:
        dest = self.root.joinpath(*key_segments(key))
        # Resolved: a link inside the directory must not lead out of it either.
        if not dest.resolve().is_relative_to(self.root.resolve()):
            raise MediaStoreError(f"{key!r} would leave the media directory", permanent=True)
        return dest

    def check_key(self, key: str) -> None:
        self.path_for(key)

    async def save(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str) -> str:
        dest = self.path_for(key)
        # The dispatcher shares the web process's event loop: every file operation runs in a thread.
        await asyncio.to_thread(dest.parent.mkdir, parents=True, exist_ok=True)
        temporary = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
        out: BinaryIO = await asyncio.to_thread(temporary.open, "wb")
        try:
            try:
                async for chunk in chunks:
                    await asyncio.to_thread(out.write, chunk)
            except BaseException:
                out.close()
                raise
            await asyncio.to_thread(_sync_and_close, out)
            await asyncio.to_thread(os.replace, temporary, dest)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return str(dest)

    async def share(self, location: str) -> str | None:
        return None


class S3Media:
    """Outputs as objects under ``s3://bucket/prefix/`` (WAVEHOOK_MEDIA_URL), played through presigned URLs."""

    def __init__(self, url: str, store: S3Store) -> None:
        self.url = url
        self.description = url
        self.store = store

    def check_key(self, key: str) -> None:
        key_segments(key)

    async def save(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str) -> str:
        import obstore
        from obstore.exceptions import BaseError

        self.check_key(key)
        try:
            # Always multipart: the length is unknown until the stream ends, and a single PUT would buffer it all.
            await obstore.put_async(
                self.store,
                key,
                chunks,
                attributes={"Content-Type": content_type},
                use_multipart=True,
                chunk_size=CHUNK_BYTES,
                max_concurrency=CONCURRENCY,
            )
        except (BaseError, OSError) as exc:  # obstore raises FileNotFoundError for a missing bucket
            raise MediaStoreError(f"{self.url}/{key}: {_summary(exc)}") from exc
        return f"{self.url}/{key}"

    async def share(self, location: str) -> str | None:
        import obstore
        from obstore.exceptions import BaseError

        if not location.startswith(f"{self.url}/"):
            raise MediaStoreError(f"{location} is not under WAVEHOOK_MEDIA_URL={self.url}")
        key = location.removeprefix(f"{self.url}/")
        try:
            return await obstore.sign_async(self.store, "GET", key, datetime.timedelta(seconds=SHARE_SECONDS))
        except (BaseError, OSError) as exc:
            raise MediaStoreError(f"{location}: cannot sign a link: {_summary(exc)}") from exc


def _s3_store(url: str, aws: dict[str, str]) -> S3Store:
    try:
        from obstore.store import S3Store
    except ImportError:
        raise ConfigError(f"WAVEHOOK_MEDIA_URL={url} needs the S3 client: pip install 'wavehook[s3]'") from None
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    config: dict[str, str] = {}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        if name in aws:
            config[name.lower()] = aws[name]
    if region := aws.get("AWS_REGION") or aws.get("AWS_DEFAULT_REGION"):
        config["aws_region"] = region
    endpoint = aws.get("AWS_ENDPOINT_URL", "")
    # Plain http only to an endpoint the user named as such (a MinIO on a private network, a test server).
    allow_http = endpoint.startswith("http://") or aws.get("AWS_ALLOW_HTTP", "").lower() in {"1", "true"}
    try:
        return S3Store(
            bucket,
            prefix=prefix or None,
            config=config,  # type: ignore[arg-type]  # the keys are S3Config's, spelt as the variables
            client_options={"allow_http": allow_http},
        )
    except Exception as exc:  # obstore raises its own errors for a malformed configuration
        raise ConfigError(f"WAVEHOOK_MEDIA_URL={url}: {exc}") from None


def open_media_store(settings: Settings) -> MediaStore:
    """The store the settings name: S3 when WAVEHOOK_MEDIA_URL is set, WAVEHOOK_MEDIA_DIR otherwise."""
    if settings.media_url is None:
        return LocalMedia(settings.media_dir)
    aws = {name: secret.reveal() for name, secret in settings.aws}
    return S3Media(settings.media_url, _s3_store(settings.media_url, aws))


__all__ = ["LocalMedia", "MediaStore", "MediaStoreError", "S3Media", "key_segments", "open_media_store"]
