"""The forward built-in: a compact notification, signed so a Standard Webhooks library verifies it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from receiver.errors import ConfigError
from receiver.handlers.registry import load_handlers
from receiver.settings import DispatchSettings, Secret, Settings
from tests.receiver.dispatch_support import MODEL, harness, run

FORWARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _settings(factory: Callable[..., Settings]) -> Settings:
    return factory(
        dispatch=DispatchSettings(
            download=False,
            log_outcomes=False,
            forward_url="https://hooks.example.com/wavehook",
            forward_secret=Secret(FORWARD_SECRET),
            retry_base_seconds=5,
        )
    )


@pytest.mark.usefixtures("backend")  # each ledger backend in turn
def test_the_notification_verifies_with_the_standard_webhooks_library(
    settings_factory: Callable[..., Settings],
) -> None:
    """The POST carries the outcome and verifies under the shared secret; a retry reuses its webhook-id."""
    received: list[httpx.Request] = []
    answers = iter([503, 200])

    def hook(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(next(answers))

    settings = _settings(settings_factory)

    async def scenario() -> tuple[int, int]:
        async with harness(settings, load_handlers(settings), transport=httpx.MockTransport(hook)) as h:
            h.clock.now = time.time()  # the library checks the timestamp against the real clock
            await h.deliver("p1")
            dispatcher = h.dispatcher()
            first = await dispatcher.run_once()
            h.clock.advance(10)
            second = await dispatcher.run_once()
            return first.retried, second.succeeded

    assert run(scenario()) == (1, 1)
    assert len(received) == 2
    request = received[-1]
    assert request.headers["content-type"] == "application/json"
    payload = Webhook(FORWARD_SECRET).verify(request.content, dict(request.headers))
    assert payload["type"] == "prediction.completed"
    assert payload["data"] == {
        "id": "p1",
        "model": MODEL,
        "status": "completed",
        "outputs": ["https://cdn.example.com/p1/output.mp4"],
        "error": None,
        "reference": None,
        "stored": [],
    }
    assert received[0].headers["webhook-id"] == received[1].headers["webhook-id"] == "msg_p1_completed"
    tampered = json.dumps({**payload, "type": "prediction.failed"}).encode()
    with pytest.raises(WebhookVerificationError):
        Webhook(FORWARD_SECRET).verify(tampered, dict(request.headers))


@pytest.mark.usefixtures("backend")  # each ledger backend in turn
def test_a_refused_forward_names_only_the_origin(settings_factory: Callable[..., Settings]) -> None:
    """A failed forward's recorded error names the receiving origin, never the URL's path (often a credential)."""
    settings = settings_factory(
        dispatch=DispatchSettings(
            download=False,
            log_outcomes=False,
            forward_url="https://hooks.example.com/services/T000/B000/XXXXSECRETXXXX",
            forward_secret=Secret(FORWARD_SECRET),
        )
    )

    async def scenario() -> list[dict[str, object]]:
        transport = httpx.MockTransport(lambda _request: httpx.Response(500))
        async with harness(settings, load_handlers(settings), transport=transport) as h:
            await h.deliver("p1")
            assert (await h.dispatcher().run_once()).retried == 1
            return h.runs()

    (forward_run,) = [r for r in run(scenario()) if r["handler"] == "forward"]
    assert forward_run["last_error"] is not None
    assert "https://hooks.example.com/" in forward_run["last_error"]
    assert "SECRET" not in forward_run["last_error"]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"WAVEHOOK_FORWARD_URL": "https://h.example.com"}, "WAVEHOOK_FORWARD_SECRET is not"),
        ({"WAVEHOOK_FORWARD_URL": "ftp://h.example.com", "WAVEHOOK_FORWARD_SECRET": FORWARD_SECRET}, "http:// or"),
        ({"WAVEHOOK_FORWARD_URL": "https://h.example.com", "WAVEHOOK_FORWARD_SECRET": "whsec_short"}, "base64"),
    ],
)
def test_forward_settings_are_checked_at_start(environ: dict[str, str], message: str) -> None:
    """A forward URL needs an http(s) scheme and a whsec_ base64 secret of at least 16 bytes."""
    with pytest.raises(ConfigError, match=message):
        DispatchSettings.from_env(environ)
