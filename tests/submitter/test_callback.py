"""Webhook URLs: our public URL and its own query kept, the receiver's path added, ref and token appended."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from receiver import correlation
from receiver.errors import TokenMismatch
from submitter.callback import new_reference, webhook_url
from submitter.errors import NotConfigured

SECRET = "local-correlation-secret"


def test_public_url_with_its_own_query() -> None:
    """The public URL's query survives, the path gains /webhooks/wavespeed, and ref/token come last."""
    url = webhook_url("https://hooks.example.com/base?tenant=a&x=1%262", "wh_abc", SECRET)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "hooks.example.com", "/base/webhooks/wavespeed")
    assert parse_qsl(parts.query) == [
        ("tenant", "a"),
        ("x", "1&2"),
        ("ref", "wh_abc"),
        ("token", correlation.make_token(SECRET, "wh_abc")),
    ]


def test_token_is_what_the_receiver_checks() -> None:
    """The receiver accepts the token we put in the URL, and refuses it under another secret."""
    query = dict(parse_qsl(urlsplit(webhook_url("http://127.0.0.1:8000", "wh_1", SECRET)).query))
    assert correlation.check(SECRET, query["ref"], query["token"]) == "wh_1"
    with pytest.raises(TokenMismatch):
        correlation.check("another-secret", query["ref"], query["token"])


def test_path_not_doubled_and_old_ref_replaced() -> None:
    """A public URL that already names the webhook path, or carries a ref, is not given them twice."""
    url = webhook_url("https://h.example/webhooks/wavespeed/?ref=old&token=old", "wh_2", SECRET)
    assert url.startswith("https://h.example/webhooks/wavespeed?ref=wh_2&token=")
    assert url.count("ref=") == 1


@pytest.mark.parametrize("public", [None, "", "ftp://h.example", "hooks.example.com"])
def test_public_url_must_be_set_and_http(public: str | None) -> None:
    """Without a usable WAVEHOOK_PUBLIC_URL there is no webhook to give: the error names the variable."""
    with pytest.raises(NotConfigured, match="WAVEHOOK_PUBLIC_URL"):
        webhook_url(public, "wh_3", SECRET)


def test_references_are_unique_and_short() -> None:
    """References are unguessable and fit the receiver's limit."""
    refs = {new_reference() for _ in range(1000)}
    assert len(refs) == 1000
    assert all(ref.startswith("wh_") and len(ref) <= 128 for ref in refs)
