"""``GET /media/{id}``: the copy of an output that the download handler recorded.

A file in the media directory is served from here (with Range, as FileResponse does); an object in the
bucket of WAVEHOOK_MEDIA_URL is played from the object store itself, through a short-lived presigned URL
this route redirects to, so no video passes through the web process.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from receiver.errors import NotFound
from receiver.http.params import MAX_ROW_ID
from receiver.http.state import receiver_state
from receiver.media_store import MediaStoreError

_INLINE = ("video/", "image/")


def _locate(path: Path, media_dir: Path) -> Path | None:
    """The file, only if it is still there and inside the media directory (links included)."""
    found = path.resolve()
    return found if found.is_relative_to(media_dir.resolve()) and found.is_file() else None


async def local_copy(request: Request) -> Response:
    download_id: int = request.path_params["download_id"]
    if download_id > MAX_ROW_ID:
        raise NotFound(f"no local copy with id {download_id} in the ledger")
    state = receiver_state(request.app)
    row = await state.ledger.get_download(download_id)
    if row is None:
        raise NotFound(f"no local copy with id {download_id} in the ledger")
    if str(row["path"]).startswith("s3://"):
        try:
            link = await state.media.share(row["path"])
        except MediaStoreError as exc:
            raise NotFound(f"stored copy {download_id}: {exc}") from None
        if link is None:
            raise NotFound(f"stored copy {download_id} is in object storage, and WAVEHOOK_MEDIA_URL is not set")
        return RedirectResponse(link, status_code=307, headers={"Cache-Control": "private, max-age=60"})
    path = await run_in_threadpool(_locate, Path(row["path"]), state.settings.media_dir)
    if path is None:
        raise NotFound(f"local copy {download_id} is no longer in the media directory")
    media_type = row["content_type"] or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # Whatever the provider sent is served from our origin: only video and images inline, never as a page.
    inline = media_type.startswith(_INLINE)
    return FileResponse(
        path,
        media_type=media_type if inline else "application/octet-stream",
        filename=None if inline else path.name,
        headers={"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"},
    )
