"""Local image files: checked, uploaded once each, and replaced by the URL the upload returns."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from submitter.errors import UploadError
from submitter.uploads import check, check_files, local_paths, replace_local_files

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
REF = "bytedance/seedance-v1-lite/reference-to-video"


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    return path


def test_local_paths_only_in_image_inputs(image: Path) -> None:
    """Only image inputs that are not URLs are taken for local files; prompts never are."""
    inputs = {"prompt": str(image), "reference_images": ["https://x.example/a.png", str(image)]}
    assert local_paths(REF, inputs) == [("reference_images", str(image))]
    assert local_paths("vendor/unknown-model", {"image": str(image)}) == [("image", str(image))]


def test_check_names_what_is_wrong(tmp_path: Path, image: Path) -> None:
    """Missing, directory, empty, too large, not an image, content not matching its name: each refused."""
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "fake.png").write_bytes(b"GIF89a....")
    cases = {
        str(tmp_path / "missing.png"): "no such file",
        str(tmp_path): "not a regular file",
        str(tmp_path / "empty.png"): "the file is empty",
        str(tmp_path / "notes.txt"): "not an image (type text/plain",
        str(tmp_path / "fake.png"): "the content is not image/png",
    }
    for raw, complaint in cases.items():
        with pytest.raises(UploadError) as info:
            check("image", raw, 1024)
        assert str(info.value).startswith(f"image={raw}: ")
        assert complaint in str(info.value)
    with pytest.raises(UploadError, match=f"{len(PNG)} bytes is over the upload limit of 10 bytes"):
        check("image", str(image), 10)
    assert check("image", str(image), 1024) == (image, "image/png")


@pytest.mark.anyio
async def test_each_file_uploaded_once_and_replaced(image: Path) -> None:
    """A file named twice is uploaded once; every occurrence is replaced by its URL; URLs stay as they are."""
    sent: list[tuple[str, bytes, str]] = []

    async def upload(name: str, content: bytes, content_type: str) -> str:
        sent.append((name, content, content_type))
        return f"https://cdn.example/{len(sent)}/{name}"

    inputs = {"prompt": "p", "reference_images": [str(image), "https://x.example/a.png", str(image)]}
    out = await replace_local_files(REF, inputs, upload, max_bytes=1024)
    assert sent == [("cat.png", PNG, "image/png")]
    assert out == {
        "prompt": "p",
        "reference_images": [
            "https://cdn.example/1/cat.png",
            "https://x.example/a.png",
            "https://cdn.example/1/cat.png",
        ],
    }


@pytest.mark.anyio
async def test_all_bad_files_reported_before_any_upload(tmp_path: Path, image: Path) -> None:
    """Every bad file is named in one error and nothing is uploaded when any is bad."""
    sent: list[str] = []

    async def upload(name: str, content: bytes, content_type: str) -> str:
        sent.append(name)
        return "https://cdn.example/x"

    inputs = {"reference_images": [str(image), str(tmp_path / "a.png"), str(tmp_path / "b.png")]}
    with pytest.raises(UploadError) as info:
        await replace_local_files(REF, inputs, upload, max_bytes=1024)
    assert "a.png: no such file" in str(info.value)
    assert "b.png: no such file" in str(info.value)
    assert sent == []


@pytest.mark.anyio
async def test_concurrent_jobs_share_one_upload_and_failures_are_not_kept(image: Path) -> None:
    """Jobs naming the same file at the same time wait for one upload; a failed upload is tried afresh."""
    calls: list[str] = []
    release = asyncio.Event()

    async def upload(name: str, content: bytes, content_type: str) -> str:
        calls.append(name)
        await release.wait()
        if len(calls) == 1:
            raise UploadError("the first upload breaks")
        return f"https://cdn.example/{len(calls)}/{name}"

    cache: dict[str, asyncio.Future[str]] = {}

    def job() -> Any:
        return replace_local_files(REF, {"reference_images": [str(image)]}, upload, max_bytes=1024, cache=cache)

    first = [asyncio.ensure_future(job()) for _ in range(3)]
    await asyncio.sleep(0.01)
    release.set()
    outcomes = await asyncio.gather(*first, return_exceptions=True)
    assert calls == ["cat.png"]
    assert all(isinstance(outcome, UploadError) for outcome in outcomes)
    assert await job() == {"reference_images": ["https://cdn.example/2/cat.png"]}


@pytest.mark.anyio
async def test_checked_files_are_not_checked_again_and_a_vanished_one_is_named(tmp_path: Path, image: Path) -> None:
    """Files ``check_files`` passed are uploaded as checked; one removed since is an ``UploadError`` naming it."""
    sent: list[str] = []

    async def upload(name: str, content: bytes, content_type: str) -> str:
        sent.append(name)
        return f"https://cdn.example/{name}"

    other = tmp_path / "dog.png"
    other.write_bytes(PNG)
    inputs = {"prompt": "p", "reference_images": [str(image), str(other)]}
    checked = check_files(REF, inputs, 1024)
    assert checked == {str(image): (image, "image/png"), str(other): (other, "image/png")}
    out = await replace_local_files(REF, inputs, upload, max_bytes=1, checked=checked)  # the limit was checked
    assert out["reference_images"] == ["https://cdn.example/cat.png", "https://cdn.example/dog.png"]
    other.unlink()
    with pytest.raises(UploadError, match=r"dog\.png: can no longer be read \(No such file or directory\)"):
        await replace_local_files(REF, inputs, upload, max_bytes=1024, checked=checked, cache={})
    assert sent == ["cat.png", "dog.png", "cat.png"]


def test_check_files_names_every_bad_file(tmp_path: Path, image: Path) -> None:
    """Every bad local file of a job is named in one error; URLs and good files pass."""
    inputs = {"reference_images": [str(image), "https://x.example/a.png", str(tmp_path / "a.png"), str(tmp_path)]}
    with pytest.raises(UploadError) as info:
        check_files(REF, inputs, 1024)
    assert str(info.value) == (
        f"reference_images={tmp_path / 'a.png'}: no such file (give an https:// URL or a local image file); "
        f"reference_images={tmp_path}: not a regular file"
    )
