"""Files the sandbox hands out: upload tickets, the PUT they point to, downloads, and task outputs."""

from __future__ import annotations

import mimetypes
import uuid
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from sandbox.api import authorize, base_url, json_object, sandbox_of
from sandbox.envelope import InvalidRequest, UnknownResource, UploadTooLarge, ok
from sandbox.media import Upload, png


async def create_upload(request: Request) -> JSONResponse:
    """``POST /api/v3/media/uploads`` with ``filename``, ``size`` and optional ``content_type``: a ticket."""
    authorize(request)
    sandbox = sandbox_of(request)
    body = await json_object(request, "filename, size and content_type of the file to upload")
    filename = body.get("filename")
    if not isinstance(filename, str) or not filename.strip() or "/" in filename:
        raise InvalidRequest("field filename must be a file name (non-empty, without '/')")
    size = body.get("size")
    limit = sandbox.config.max_upload_bytes
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidRequest("field size must be the file's size in bytes (a non-negative integer)")
    if size > limit:
        raise UploadTooLarge(f"field size={size} exceeds the upload limit of {limit} bytes")
    content_type = body.get("content_type") or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if not isinstance(content_type, str):
        raise InvalidRequest("field content_type must be a string such as image/png")
    upload = Upload(id=uuid.uuid4().hex, filename=filename, content_type=content_type, size=size)
    sandbox.uploads[upload.id] = upload
    base = base_url(request)
    return ok(
        {
            "id": upload.id,
            "upload": {
                "method": "PUT",
                "url": f"{base}/_storage/uploads/{upload.id}",
                "headers": {"Content-Type": content_type},
            },
            "download_url": f"{base}/media/uploads/{upload.id}/{quote(filename)}",
        }
    )


# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD = 64 * 1024
MEDIA_KINDS = ("image", "video", "audio")


async def upload_binary(request: Request) -> JSONResponse:
    """``POST /api/v3/media/upload/binary``, multipart with the field ``file`` (the provider's older upload):
    stores the file and answers ``type``, ``download_url``, ``filename`` and ``size``."""
    authorize(request)
    sandbox = sandbox_of(request)
    limit = sandbox.config.max_upload_bytes
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("the body must be multipart/form-data with the file in the field `file`")
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise InvalidRequest("send the upload's size in the Content-Length header")
    if int(declared) > limit + MULTIPART_OVERHEAD:
        raise UploadTooLarge(f"the upload ({declared} bytes) exceeds the upload limit of {limit} bytes")
    async with request.form(max_files=1, max_fields=8) as form:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise InvalidRequest("multipart field `file` is missing (or is not a file)")
        data = await part.read(limit + 1)
        filename = PurePosixPath((part.filename or "").replace("\\", "/")).name or "upload"
        content_type = part.content_type or ""
    if len(data) > limit:
        raise UploadTooLarge(f"the file exceeds the upload limit of {limit} bytes")
    if content_type in ("", "application/octet-stream"):
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    kind = content_type.partition("/")[0]
    if kind not in MEDIA_KINDS:
        raise InvalidRequest(f"file type {content_type} is not supported: upload an image, a video or an audio file")
    upload = Upload(id=uuid.uuid4().hex, filename=filename, content_type=content_type, size=len(data), data=data)
    sandbox.uploads[upload.id] = upload
    url = f"{base_url(request)}/media/uploads/{upload.id}/{quote(filename)}"
    return ok({"type": kind, "download_url": url, "filename": filename, "size": len(data)})


async def put_upload(request: Request) -> Response:
    """``PUT`` the bytes of a ticket: exactly the size it declared."""
    upload = sandbox_of(request).uploads.get(request.path_params["upload_id"])
    if upload is None:
        raise UnknownResource("no upload ticket with this id; create one with POST /api/v3/media/uploads")
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > upload.size:
            raise InvalidRequest(f"the ticket declared {upload.size} bytes; more were sent")
    if len(received) != upload.size:
        raise InvalidRequest(f"the ticket declared {upload.size} bytes; {len(received)} were sent")
    upload.data = bytes(received)
    return Response(status_code=200)


async def download_upload(request: Request) -> Response:
    upload = sandbox_of(request).uploads.get(request.path_params["upload_id"])
    if upload is None or upload.data is None or upload.filename != request.path_params["filename"]:
        raise UnknownResource("no uploaded file at this URL")
    return Response(upload.data, media_type=upload.content_type)


async def output(request: Request) -> Response:
    """A completed task's output: the sample MP4 (with Range support, for ``<video>``) or a PNG."""
    task = sandbox_of(request).tasks.find(request.path_params["task_id"])
    name = request.path_params["name"]
    if task is None or task.status != "completed" or name != task.output_name:
        raise UnknownResource("no output at this URL (the task is unknown, not completed, or has another output)")
    if name.endswith(".png"):
        return Response(png(), media_type="image/png")
    sample: Path = request.app.state.sample_mp4
    return FileResponse(sample, media_type="video/mp4")
