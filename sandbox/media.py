"""Real media for the sandbox's outputs and uploads: a small playable MP4, a PNG made here, uploaded files."""

from __future__ import annotations

import dataclasses
import struct
import zlib
from functools import cache
from importlib import resources

SAMPLE_MP4 = resources.files("sandbox") / "assets" / "sample.mp4"
_VIDEO_HINTS = ("video", "t2v", "i2v", "waver", "avatar", "omni-human", "lipsync")
_IMAGE_HINTS = ("image", "t2i", "flux", "/edit", "-edit")


def output_name(model_id: str) -> str:
    """The file a model produces: a PNG for image models (``…/text-to-image``, ``…/edit``), else an MP4.

    Model ids carry no type, so this reads hints from the id; anything unrecognised is a video model,
    which is what this project is about.
    """
    lowered = model_id.lower()
    is_video = any(hint in lowered for hint in _VIDEO_HINTS)
    is_image = any(hint in lowered for hint in _IMAGE_HINTS)
    return "output.png" if is_image and not is_video else "output.mp4"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@cache
def png(width: int = 64, height: int = 64) -> bytes:
    """A valid RGB PNG with a colour gradient, built from the spec with zlib and struct."""
    rows = b"".join(
        b"\x00" + bytes(c for x in range(width) for c in (x * 255 // width, y * 255 // height, 160))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit, truecolour, no interlace
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")


@dataclasses.dataclass(slots=True)
class Upload:
    id: str
    filename: str
    content_type: str
    size: int
    data: bytes | None = None  # None until the PUT arrives
