"""The provider clients (async and sync) against the fake provider: headers, URLs, retries, errors, uploads."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from receiver.settings import Secret
from submitter import protocol
from submitter.client import AsyncProviderClient
from submitter.errors import AmbiguousSubmit, AuthenticationError, NotConfigured, ProviderUnavailable, RateLimited
from tests.submitter.fake_provider import BASE, KEY, FakeProvider

MODEL = "bytedance/dreamina-v3.0-pro/text-to-video"
WEBHOOK = "https://hooks.example.com/base/webhooks/wavespeed?tenant=a&x=1&ref=wh_1&token=abc"


def make_async(provider: FakeProvider, slept: list[float], key: str | None = KEY) -> AsyncProviderClient:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return AsyncProviderClient(
        api_key=Secret(key) if key else None,
        base_url=BASE + "/",
        client_name="wavehook-test",
        policy=protocol.Policy(retries=3, backoff_seconds=0.5, jitter=lambda: 1.0),
        transport=provider.transport(),
        sleep=sleep,
    )


@pytest.mark.anyio
async def test_submit_sends_auth_client_name_and_encoded_webhook(provider: FakeProvider) -> None:
    """The submit carries the bearer key, our client name, and the webhook URL encoded so it survives intact."""
    async with make_async(provider, []) as client:
        prediction = await client.submit(MODEL, {"prompt": "a fox"}, WEBHOOK)
    (request,) = provider.requests
    assert prediction["id"] == "task0001"
    assert str(request.url).startswith(f"{BASE}/api/v3/{MODEL}?webhook=https%3A%2F%2Fhooks.example.com")
    assert parse_qs(request.url.query.decode()) == {"webhook": [WEBHOOK]}
    assert "&tenant" not in request.url.query.decode()  # the webhook's own query stays inside the parameter
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["x-client-name"] == "wavehook-test"
    assert request.headers["content-type"] == "application/json"


@pytest.mark.anyio
async def test_connection_refused_is_retried_with_backoff_and_creates_one_task(provider: FakeProvider) -> None:
    """A submit whose connection was refused is sent again after a backoff; one task results."""
    provider.submit_faults = ["connect", "503", "429-retry-after"]
    slept: list[float] = []
    async with make_async(provider, slept) as client:
        await client.submit(MODEL, {"prompt": "x"}, None)
    assert slept == [0.5, 1.0, 7.0]
    assert len(provider.submits) == 4
    assert len(provider.tasks) == 1


@pytest.mark.anyio
async def test_retries_run_out(provider: FakeProvider) -> None:
    """After the retries allowed, a 429 becomes RateLimited and refused connections ProviderUnavailable."""
    provider.submit_faults = ["429"] * 4
    async with make_async(provider, []) as client:
        with pytest.raises(RateLimited):
            await client.submit(MODEL, {"prompt": "x"}, None)
        provider.submit_faults = ["connect"] * 4
        with pytest.raises(ProviderUnavailable):
            await client.submit(MODEL, {"prompt": "x"}, None)
    assert provider.tasks == {}


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["lose-answer", "drop", "500"])
async def test_lost_answer_is_ambiguous_and_not_resent(provider: FakeProvider, fault: str) -> None:
    """Read timeout, dropped connection or a 500 after sending: AmbiguousSubmit, and the POST went out once."""
    provider.submit_faults = [fault]
    slept: list[float] = []
    async with make_async(provider, slept) as client:
        with pytest.raises(AmbiguousSubmit):
            await client.submit(MODEL, {"prompt": "x"}, None)
    assert len(provider.submits) == 1
    assert len(provider.tasks) == 1
    assert slept == []


@pytest.mark.anyio
async def test_api_key_never_in_errors(provider: FakeProvider) -> None:
    """A provider that echoes the key in its error message does not get it into our exception."""
    async with make_async(provider, [], key="sk-wrong-key-that-must-not-leak") as client:
        with pytest.raises(AuthenticationError) as info:
            await client.result("task0001")
    assert "sk-wrong-key-that-must-not-leak" not in str(info.value)
    assert "sk-wrong-key-that-must-not-leak" not in info.value.message
    assert "[redacted]" in str(info.value)


@pytest.mark.anyio
async def test_missing_key_is_refused_before_any_request(provider: FakeProvider) -> None:
    """Without an API key, nothing is sent and the error says which variable to set."""
    async with make_async(provider, [], key=None) as client:
        with pytest.raises(NotConfigured, match="WAVESPEED_API_KEY"):
            await client.submit(MODEL, {"prompt": "x"}, None)
    assert provider.requests == []


@pytest.mark.anyio
async def test_upload_puts_bytes_without_our_key(provider: FakeProvider) -> None:
    """Uploads ask for a ticket, PUT the bytes to its URL with its headers only, and return its download URL."""
    async with make_async(provider, []) as client:
        url = await client.upload("cat.png", b"\x89PNG\r\n\x1a\nrest", "image/png")
    ticket, put = provider.requests
    assert ticket.url.path == "/api/v3/media/uploads"
    assert put.method == "PUT"
    assert urlsplit(str(put.url)).hostname == "storage.test"
    assert "authorization" not in put.headers
    assert put.headers["x-up"] == "1"
    assert provider.uploads["up1"] == b"\x89PNG\r\n\x1a\nrest"
    assert url == f"{BASE}/media/uploads/up1/cat.png"


@pytest.mark.anyio
async def test_list_and_secret(provider: FakeProvider) -> None:
    """The list endpoint is a POST with page, size and filters; the secret comes back wrapped."""
    provider.create(MODEL, {"prompt": "x"})
    async with make_async(provider, []) as client:
        items = await client.list_page(1, 50, model=MODEL, created_after="2026-11-21T00:00:00.000Z")
        secret = await client.webhook_secret()
    assert [item["id"] for item in items] == ["task0001"]
    assert provider.requests[0].read() == (
        b'{"page":1,"page_size":50,"model":"bytedance/dreamina-v3.0-pro/text-to-video",'
        b'"created_after":"2026-11-21T00:00:00.000Z"}'
    )
    assert secret.reveal() == "whsec_fake"
    assert "whsec_fake" not in repr(secret)


def test_timeouts_from_settings(submit_settings: object) -> None:
    """Connect and read timeouts and the client name come from the settings."""
    from receiver.settings import SubmitSettings

    settings = submit_settings(connect_timeout_seconds=3.0, read_timeout_seconds=42.0, client_name="me")  # type: ignore[operator]
    assert isinstance(settings.submit, SubmitSettings)
    client = AsyncProviderClient.from_settings(settings, transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert client.timeout.connect == 3.0
    assert client.timeout.read == 42.0
    assert client._headers["X-Client-Name"] == "me"
