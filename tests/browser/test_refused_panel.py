"""The dashboard's "Refused deliveries" panel in Debian's Chromium, against a real ``wavehook serve``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Stack, screenshot
from tests.support import signed_headers, wait_for

pytestmark = pytest.mark.browser

OTHER = "whsec_c29tZS1vdGhlci1hY2NvdW50cy1zZWNyZXQ="


def test_refused_deliveries_appear_on_the_open_page(receiver_factory: Callable[..., Stack], page: Any) -> None:
    """Deliveries signed with the wrong secret show up, without a reload, as a panel row that explains the
    reason and names the setting to check; the tile counts them."""
    stack = receiver_factory(downloads=False)
    page.goto(stack.url + "/")
    page.locator("#live.on").wait_for()
    assert page.locator("[data-panel='refused']").count() == 0
    page.evaluate("window.loadedOnce = true")
    with httpx.Client(base_url=stack.url) as client:
        for n in range(3):
            raw = json.dumps({"id": f"task-{n}", "status": "completed"}).encode()
            headers = signed_headers(OTHER, raw, webhook_id=f"task-{n}")
            assert client.post("/webhooks/wavespeed", content=raw, headers=headers).status_code == 401
    row = page.locator("[data-panel='refused'] tr[data-reason='signature_mismatch']")
    row.wait_for()
    wait_for(lambda: row.locator("td.num").inner_text() == "3", timeout=10, what="the count to reach 3")
    assert "WAVESPEED_WEBHOOK_SECRET" in row.locator("td.explain").inner_text()
    assert "task-2" in row.inner_text()
    assert page.inner_text("[data-count='refused']") == "3"
    assert page.evaluate("window.loadedOnce") is True, "the page reloaded"
    screenshot(page, "dashboard-refused-deliveries")
    assert page.errors == []
