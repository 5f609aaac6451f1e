"""What the dashboard says, in Debian's Chromium against a real ``wavehook serve``: a failed prediction's error in
its row, the outbox explained, and "dead" said one way."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Stack, screenshot
from tests.conftest import SECRET
from tests.support import signed_headers

pytestmark = pytest.mark.browser


def test_failed_row_shows_its_error_and_words_are_consistent(receiver_factory: Callable[..., Stack], page: Any) -> None:
    """The row of a failed prediction carries the provider's error; the outbox tile says what it counts; the
    pages name dead runs "Dead runs" (never "dead letters" or "dead handler runs")."""
    stack = receiver_factory(downloads=False)
    body = {"id": "task-failed-1", "model": "bytedance/waver-1.0", "status": "failed", "error": "out of GPU memory"}
    raw = json.dumps(body).encode()
    with httpx.Client(base_url=stack.url) as client:
        response = client.post("/webhooks/wavespeed", content=raw, headers=signed_headers(SECRET, raw, webhook_id="f1"))
        assert response.status_code == 200
    page.goto(stack.url + "/")
    row = page.locator("tr[data-id='task-failed-1']")
    assert row.locator(".row-error").inner_text() == "out of GPU memory"
    assert "handler runs still to do" in page.inner_text("[data-explain='outbox']")
    screenshot(page, "dashboard-failed-row")
    for path in ("/", "/dead"):
        page.goto(stack.url + path)
        text = page.inner_text("body").lower()
        assert "dead letter" not in text
        assert "dead handler" not in text
        assert "dead runs" in text
    assert page.errors == []
