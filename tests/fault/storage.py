"""Storage faults made real for the fault tests: a tiny tmpfs filled to the last page, files made immutable.

Both need root (CI and the development machines run as root). Where the kernel or the filesystem refuses,
the test is skipped with the reason it got, never passed without the fault in place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


@contextlib.contextmanager
def _tmpfs(path: Path, options: str, purpose: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = _run("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a {purpose} (needs root with CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        if _run("umount", str(path)).returncode != 0:
            _run("umount", "-l", str(path))  # something still holds a file there: detach it all the same


def small_disk(path: Path, size: str = "4m") -> contextlib.AbstractContextManager[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (skips the test if mounting is not permitted); unmounted after."""
    return _tmpfs(path, f"size={size},mode=0755", "tmpfs to fill")


def read_only_dir(path: Path) -> contextlib.AbstractContextManager[Path]:
    """An empty, read-only filesystem mounted at ``path`` (root cannot write there either); unmounted after.
    Skips the test, with the reason, where mounting is not permitted."""
    return _tmpfs(path, "ro,size=64k,mode=0755", "read-only tmpfs")


def fill(directory: Path) -> Path:
    """Write zeros into ``directory`` until its filesystem has not one block left; the filler file."""
    filler = directory / "filler"
    size = 1 << 20
    with open(filler, "wb", buffering=0) as out:
        while size:  # halving the write once the disk refuses it, down to the last block
            try:
                out.write(b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2
    return filler


def require_immutable(directory: Path) -> None:
    """Skip the test unless ``chattr +i`` stops writes through a descriptor opened before (as SQLite's are)."""
    probe = directory / "immutable-probe"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        flagged = _run("chattr", "+i", str(probe))
        if flagged.returncode != 0:
            pytest.skip(f"chattr +i is not supported here: {flagged.stderr.strip()}")
        try:
            os.write(fd, b"x")
        except PermissionError:
            return
        finally:
            _run("chattr", "-i", str(probe))
        pytest.skip(f"this filesystem keeps accepting writes to an immutable file through an open descriptor: {probe}")
    finally:
        os.close(fd)
        probe.unlink()


@contextlib.contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """``chattr +i`` on each path for the duration: even root's writes fail (EPERM), as on a read-only disk."""
    try:
        for path in paths:
            subprocess.run(["chattr", "+i", str(path)], check=True, capture_output=True, timeout=30)
        yield
    finally:
        for path in paths:
            _run("chattr", "-i", str(path))
