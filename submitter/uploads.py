"""Local files given for image inputs: checked (exists, is an image, not too big), uploaded through the
provider's media upload, and replaced by the URL it returns."""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from submitter.catalog import get_model
from submitter.errors import UploadError
from submitter.validation import is_url

# Inputs of models outside the catalog that, by the provider's naming, carry images.
IMAGE_FIELDS = frozenset({"image", "reference_images"})
# First bytes of the usual image formats: an extension alone does not make a file an image.
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "image/bmp": (b"BM",),
}

Uploader = Callable[[str, bytes, str], Awaitable[str]]
# A local path as given -> the file it names and its content type, once ``check`` has passed it.
Checked = dict[str, tuple[Path, str]]


def media_fields(model_id: str) -> frozenset[str]:
    model = get_model(model_id)
    if model is None:
        return IMAGE_FIELDS
    return frozenset(spec.name for spec in model.inputs if spec.media)


def local_paths(model_id: str, inputs: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, path) of every image input that is not a URL, in input order."""
    found: list[tuple[str, str]] = []
    for field in media_fields(model_id):
        value = inputs.get(field)
        values = value if isinstance(value, list) else [value]
        found += [(field, item) for item in values if isinstance(item, str) and item and not is_url(item)]
    return found


def check(field: str, raw: str, max_bytes: int) -> tuple[Path, str]:
    """The file and its content type, or ``UploadError`` naming the field, the path and what is wrong."""
    path = Path(raw).expanduser()
    if not path.exists():
        raise UploadError(f"{field}={raw}: no such file (give an https:// URL or a local image file)")
    if not path.is_file():
        raise UploadError(f"{field}={raw}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise UploadError(f"{field}={raw}: the file is empty")
    if size > max_bytes:
        raise UploadError(f"{field}={raw}: {size} bytes is over the upload limit of {max_bytes} bytes")
    content_type = mimetypes.guess_type(path.name)[0] or ""
    if not content_type.startswith("image/"):
        raise UploadError(f"{field}={raw}: not an image (type {content_type or 'unknown'} from its name)")
    signatures = _SIGNATURES.get(content_type)
    if signatures is not None:
        with path.open("rb") as handle:
            head = handle.read(16)
        if not head.startswith(signatures):
            raise UploadError(f"{field}={raw}: the content is not {content_type}, whatever its name says")
    return path, content_type


def check_files(model_id: str, inputs: dict[str, Any], max_bytes: int) -> Checked:
    """Every local image file of ``inputs`` checked (see ``check``), or one ``UploadError`` naming each bad one."""
    problems: list[str] = []
    checked: Checked = {}
    for field, raw in local_paths(model_id, inputs):
        try:
            checked[raw] = check(field, raw, max_bytes)
        except UploadError as exc:
            problems.append(str(exc))
    if problems:
        raise UploadError("; ".join(problems))
    return checked


async def replace_local_files(
    model_id: str,
    inputs: dict[str, Any],
    upload: Uploader,
    *,
    max_bytes: int,
    cache: dict[str, asyncio.Future[str]] | None = None,
    checked: Checked | None = None,
) -> dict[str, Any]:
    """``inputs`` with every local image path replaced by its uploaded URL. Each file is uploaded once however
    often it appears, even by jobs running at the same time (``cache``: resolved path -> the upload's future; a
    failed upload is not kept). ``checked``: the files ``check_files`` already passed; without it they are
    checked here first, every problem reported before anything is uploaded."""
    if checked is None:
        # stat and a read of the first bytes: file work, kept off the event loop
        checked = await asyncio.to_thread(check_files, model_id, inputs, max_bytes)
    if not checked:
        return inputs
    uploads = cache if cache is not None else {}
    urls: dict[str, str] = {}
    for path, content_type in checked.values():
        key = str(path.resolve())
        if key not in uploads:
            uploads[key] = asyncio.ensure_future(_upload(upload, path, content_type))
        future = uploads[key]
        try:
            urls[key] = await asyncio.shield(future)
        except Exception:
            if uploads.get(key) is future:
                del uploads[key]
            raise
    return {field: _swap(value, checked, urls) for field, value in inputs.items()}


async def _upload(upload: Uploader, path: Path, content_type: str) -> str:
    try:
        content = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        # Checked when the job was prepared, but moved or removed since (a long batch gives it time).
        raise UploadError(f"{path}: can no longer be read ({exc.strerror or exc})") from exc
    return await upload(path.name, content, content_type)


def _swap(value: Any, checked: dict[str, tuple[Path, str]], urls: dict[str, str]) -> Any:
    if isinstance(value, list):
        return [_swap(item, checked, urls) for item in value]
    if isinstance(value, str) and value in checked:
        return urls[str(checked[value][0].resolve())]
    return value
