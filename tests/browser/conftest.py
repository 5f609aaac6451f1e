"""Browser fixtures: Debian's Chromium driven by Playwright (never a downloaded browser), a real stack on
loopback (the sandbox and ``wavehook serve``), and screenshots saved under tests/artifacts/."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SECRET
from tests.support import ROOT, WAVEHOOK, Process, free_port, running

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
VIEWPORT = {"width": 1400, "height": 900}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium per test module. Skipped only outside CI when Chromium is not installed.

    Module scope, not session: while Playwright's sync API is open, its event loop counts as running in the
    main thread, and the tests that come after would find asyncio.run() refused.
    """
    if not CHROMIUM.exists():
        reason = f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the browser tests (scripts/test.sh installs it as root)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page; console errors are collected on ``page.errors``."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.errors = errors
    try:
        yield tab
    finally:
        context.close()


def screenshot(page: Any, name: str, *, full_page: bool = False) -> Path:
    """Save what the page shows now as tests/artifacts/<name>.png (for a person to look at)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


class Stack:
    """A sandbox (the provider, serving real MP4s) and a receiver whose handlers download outputs and include a
    flaky one; both real processes on loopback, sharing nothing but HTTP."""

    def __init__(
        self,
        directory: Path,
        *,
        admin_token: str | None = None,
        downloads: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.downloads = downloads
        self.env = env or {}  # more settings for the receiver (an object store, ...)
        self.db = directory / "wavehook.db"
        self.marker = directory / "downstream-down"
        self.sandbox_url = f"http://127.0.0.1:{free_port()}"
        self.url = f"http://127.0.0.1:{free_port()}"
        self.admin_token = admin_token

    def sandbox(self) -> Process:
        port = self.sandbox_url.rsplit(":", 1)[1]
        args = [WAVEHOOK, "sandbox", "--port", port, "--secret", SECRET, "--queue-time", "0.5"]
        args += ["--run-time", "2.5", "--jitter", "0.2", "--seed", "5", "--retry-initial", "0.2"]
        return Process(args, env={"WAVEHOOK_LOG_FORMAT": "json"}, log_path=self.directory / "sandbox.log")

    def receiver(self) -> Process:
        env = {
            "WAVESPEED_WEBHOOK_SECRET": SECRET,
            "WAVEHOOK_DB": str(self.db),
            "WAVEHOOK_MEDIA_DIR": str(self.directory / "media"),
            "WAVEHOOK_LOG_FORMAT": "json",
            "WAVEHOOK_HANDLERS": "tests.browser.flaky_handler",
            "WAVEHOOK_MAX_ATTEMPTS": "1",
            "WAVEHOOK_DISPATCH_POLL_SECONDS": "0.2",
            # The sandbox serves its outputs on loopback, which the downloader refuses by default.
            "WAVEHOOK_DOWNLOAD_ALLOW_LOOPBACK": "true",
            "WAVEHOOK_DOWNLOAD": "true" if self.downloads else "false",
            "FLAKY_MARKER": str(self.marker),
            "PYTHONPATH": str(ROOT),
        }
        if self.admin_token:
            env["WAVEHOOK_ADMIN_TOKEN"] = self.admin_token
        env.update(self.env)
        port = self.url.rsplit(":", 1)[1]
        args = [WAVEHOOK, "serve", "--port", port]
        return Process(args, env=env, log_path=self.directory / "serve.log", cwd=ROOT)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The sandbox and a loopback-only receiver, shared by a module's tests."""
    stack = Stack(tmp_path_factory.mktemp("stack"))
    with (
        running(stack.sandbox(), f"{stack.sandbox_url}/healthz"),
        running(stack.receiver(), f"{stack.url}/healthz"),
    ):
        yield stack


@pytest.fixture
def receiver_factory(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """A lone receiver (no sandbox) with the given admin token and download setting; stopped afterwards."""
    numbers = itertools.count()
    with contextlib.ExitStack() as exits:

        def start(**options: Any) -> Stack:
            lone = Stack(tmp_path / f"receiver-{next(numbers)}", **options)
            lone.directory.mkdir()
            exits.enter_context(running(lone.receiver(), f"{lone.url}/healthz"))
            return lone

        yield start
