"""Correlation tokens: made from the ledger's secret, checked on delivery, never shown back."""

from __future__ import annotations

import pytest

from receiver import correlation
from receiver.errors import BadRequest, TokenMismatch


def test_a_token_made_for_a_reference_is_accepted() -> None:
    """check() returns the reference when its token was made with the same secret."""
    token = correlation.make_token("s3cret", "wh_1")
    assert correlation.check("s3cret", "wh_1", token) == "wh_1"


def test_a_token_for_another_reference_or_secret_is_refused() -> None:
    """A token made for another reference, or with another secret, is a mismatch."""
    with pytest.raises(TokenMismatch):
        correlation.check("s3cret", "wh_2", correlation.make_token("s3cret", "wh_1"))
    with pytest.raises(TokenMismatch):
        correlation.check("s3cret", "wh_1", correlation.make_token("other", "wh_1"))


def test_a_token_without_its_reference_is_a_bad_request() -> None:
    """A token alone names no job: the answer says the ref parameter is missing."""
    with pytest.raises(BadRequest, match="ref"):
        correlation.check("s3cret", None, "abc")


def test_redact_masks_only_the_token() -> None:
    """redact() keeps the URL and every other parameter, and masks the token."""
    url = "https://h.example/hook?x=1&ref=wh_1&token=abc123"
    assert correlation.redact(url) == "https://h.example/hook?x=1&ref=wh_1&token=[redacted]"
    assert correlation.redact("https://h.example/hook") == "https://h.example/hook"
