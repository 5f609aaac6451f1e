"""Login in Debian's Chromium: with WAVEHOOK_ADMIN_TOKEN set, the page is refused until the login form is used."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import Stack, screenshot

pytestmark = pytest.mark.browser

TOKEN = "browser-test-admin-token-4f1c2a9e"


def test_login_flow(receiver_factory: Callable[..., Stack], page: Any) -> None:
    """The page sends an anonymous browser to the login form; a wrong token is refused, the right one lets it in."""
    stack = receiver_factory(admin_token=TOKEN, downloads=False)
    page.goto(stack.url + "/dead")
    assert page.url == stack.url + "/login?next=/dead"
    assert page.request.get(stack.url + "/api/predictions").status == 401
    refused = page.request.get(stack.url + "/", max_redirects=0)
    assert (refused.status, refused.headers["location"]) == (303, "/login?next=/")
    screenshot(page, "login")

    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    assert page.locator(".error-box").inner_text() == "That is not the admin token."
    assert page.context.cookies() == []

    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(stack.url + "/dead")
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert TOKEN not in cookie["value"]
    assert page.request.get(stack.url + "/api/summary").status == 200  # the API takes the session too

    page.goto(stack.url + "/")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(stack.url + "/login")
    page.goto(stack.url + "/")
    assert page.url.startswith(stack.url + "/login")
    assert page.errors == []
