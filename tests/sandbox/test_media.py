"""The sandbox's media are real: the MP4's boxes say H.264 video, playable while loading; the PNG is valid."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator

import pytest

from sandbox.media import SAMPLE_MP4, output_name, png

# Boxes that hold other boxes (ISO/IEC 14496-12); stsd holds its entries after 8 bytes of its own.
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box between start and end."""
    end = len(data) if end is None else end
    while start < end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        assert size >= 8, f"box {kind!r} has an impossible size {size}"
        yield kind, start + 8, start + size
        start += size
    assert start == end, "boxes overrun their container"


def tree(data: bytes, start: int = 0, end: int | None = None, path: str = "") -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for kind, begin, stop in boxes(data, start, end):
        name = f"{path}/{kind.decode('latin-1')}"
        found.setdefault(name, (begin, stop))
        if kind in CONTAINERS:
            found.update(tree(data, begin, stop, name))
    return found


def test_sample_mp4_is_an_h264_video_with_moov_first() -> None:
    """ftyp, then moov before mdat (faststart), a video track whose sample entry is avc1 at 96x64, 1 s long."""
    data = SAMPLE_MP4.read_bytes()
    assert 1_000 < len(data) < 20_000
    top = [kind for kind, _, _ in boxes(data)]
    assert top[0] == b"ftyp"
    assert top.index(b"moov") < top.index(b"mdat")
    found = tree(data)
    begin, _ = found["/moov/mvhd"]
    timescale, duration = struct.unpack(">II", data[begin + 12 : begin + 20])  # version 0 layout
    assert abs(duration / timescale - 1.0) < 0.05
    begin, _ = found["/moov/trak/mdia/hdlr"]
    assert data[begin + 8 : begin + 12] == b"vide"
    begin, _ = found["/moov/trak/mdia/minf/stbl/stsd"]
    entry_kind = data[begin + 12 : begin + 16]
    width, height = struct.unpack(">HH", data[begin + 16 + 24 : begin + 16 + 28])
    assert (entry_kind, width, height) == (b"avc1", 96, 64)
    _, mdat_start, mdat_end = next(b for b in boxes(data) if b[0] == b"mdat")
    assert mdat_end - mdat_start > 500  # there are frames in it


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe is not installed")
def test_sample_mp4_decodes_with_ffprobe_when_present() -> None:
    """Where ffprobe exists, it reads the sample as one h264 yuv420p stream of 12 frames."""
    with SAMPLE_MP4.open("rb") as handle:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", "-"],
            stdin=handle,
            capture_output=True,
            check=True,
        )
    (stream,) = json.loads(out.stdout)["streams"]
    assert (stream["codec_name"], stream["pix_fmt"], stream["nb_read_frames"]) == ("h264", "yuv420p", "12")


def test_png_is_valid_with_checked_chunks() -> None:
    """The PNG has the signature, IHDR/IDAT/IEND with correct CRCs, and rows of the declared size."""
    data = png(32, 16)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, bytes] = {}
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks[kind] = body
        at += 12 + length
    assert list(chunks) == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">IIBB", chunks[b"IHDR"][:10]) == (32, 16, 8, 2)
    assert len(zlib.decompress(chunks[b"IDAT"])) == 16 * (1 + 32 * 3)


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("bytedance/seedance-v1-lite-t2v-480p", "output.mp4"),
        ("bytedance/dreamina-v3.0/image-to-video-1080p", "output.mp4"),
        ("bytedance/waver-1.0", "output.mp4"),
        ("bytedance/dreamina-v3.0/text-to-image", "output.png"),
        ("bytedance/dreamina-v3.0/edit", "output.png"),
        ("wavespeed-ai/z-image/turbo", "output.png"),
        ("acme/unheard-of", "output.mp4"),
    ],
)
def test_output_kind_follows_the_model_id(model: str, name: str) -> None:
    """Video models (and unknown ones) produce an MP4; image models a PNG."""
    assert output_name(model) == name
