"""The environment table of the contract: each variable, what it sets, its default, and how a bad value is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from receiver.errors import ConfigError
from receiver.settings import Secret, Settings
from receiver.statuses import TERMINAL_STATUSES


def test_defaults_when_the_environment_is_empty() -> None:
    """Nothing set: the contract's defaults, and no secret, key or token."""
    settings = Settings.from_env({})
    assert settings.webhook_secrets == ()
    assert settings.api_key is None
    assert settings.base_url == "https://api.wavespeed.ai"
    assert (settings.db, settings.db_path) == ("wavehook.db", Path("wavehook.db"))
    assert settings.public_url is None
    assert settings.media_dir == Path("media")
    assert settings.handler_modules == ()
    assert settings.admin_token is None
    assert settings.terminal_statuses == TERMINAL_STATUSES
    assert (settings.tolerance_seconds, settings.max_body_bytes, settings.busy_timeout_ms) == (300, 1024 * 1024, 5000)


ENVIRONMENT: list[tuple[str, str, str, Any]] = [
    ("WAVESPEED_WEBHOOK_SECRET", " whsec_a , whsec_b ", "webhook_secrets", (Secret("whsec_a"), Secret("whsec_b"))),
    ("WAVESPEED_API_KEY", "wsk", "api_key", Secret("wsk")),
    ("WAVESPEED_BASE_URL", "http://127.0.0.1:8100/", "base_url", "http://127.0.0.1:8100"),
    ("WAVEHOOK_DB", "postgresql://u@h/d", "db", "postgresql://u@h/d"),
    ("WAVEHOOK_PUBLIC_URL", "https://hooks.example.com/", "public_url", "https://hooks.example.com"),
    ("WAVEHOOK_MEDIA_DIR", "/srv/media", "media_dir", Path("/srv/media")),
    ("WAVEHOOK_HANDLERS", "a.b, c", "handler_modules", ("a.b", "c")),
    (
        "WAVEHOOK_ADMIN_TOKEN",
        " an-admin-token-of-24-characters ",
        "admin_token",
        Secret("an-admin-token-of-24-characters"),
    ),
    ("WAVEHOOK_TOLERANCE_SECONDS", "30", "tolerance_seconds", 30),
    ("WAVEHOOK_TERMINAL_STATUSES", "completed,failed", "terminal_statuses", ("completed", "failed")),
]


@pytest.mark.parametrize(("name", "raw", "field", "expected"), ENVIRONMENT, ids=[row[0] for row in ENVIRONMENT])
def test_each_variable_sets_its_field(name: str, raw: str, field: str, expected: Any) -> None:
    """A variable of the table, as given, lands in its field (a URL's trailing slash dropped, lists split)."""
    assert getattr(Settings.from_env({name: raw}), field) == expected


def test_a_postgres_url_is_kept_whole() -> None:
    """``WAVEHOOK_DB`` is kept as given: a URL's ``//`` is not collapsed as a path would be."""
    assert Settings.from_env({"WAVEHOOK_DB": "postgres://u:p@h:5432/d"}).db == "postgres://u:p@h:5432/d"


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("WAVEHOOK_TOLERANCE_SECONDS", "soon", "WAVEHOOK_TOLERANCE_SECONDS='soon' is not an integer"),
        ("WAVEHOOK_TOLERANCE_SECONDS", "0", "below the minimum of 1"),
        ("WAVEHOOK_DISPATCH_IN_WEB", "maybe", "is not a boolean"),
        ("WAVEHOOK_LOG_FORMAT", "xml", "is not one of auto, json, console"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, raw: str, says: str) -> None:
    """A malformed value is a ConfigError that names the variable and what it expects."""
    with pytest.raises(ConfigError, match=says):
        Settings.from_env({name: raw})
