"""The provider's API over httpx: ``AsyncProviderClient``, one pooled client running the decisions of
``submitter.protocol`` (the blocking ``Submitter`` runs it on a loop of its own).

Foreign exceptions stop here: above this module nothing catches ``httpx.*``. The API key goes only into the
``Authorization`` header of requests to the provider's own base URL (never to an upload URL on another
host), and is scrubbed from every message that leaves.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Self

import httpx

from receiver.settings import Secret, Settings
from submitter import protocol
from submitter.errors import NotConfigured, ProviderError, SubmitterError

VERSION = "0.1.0"
KEY_HELP = "WAVESPEED_API_KEY is not set: create a key in the provider's dashboard and export it"


class _Base:
    def __init__(
        self,
        *,
        api_key: Secret | None,
        base_url: str,
        client_name: str = "wavehook",
        timeout: httpx.Timeout | None = None,
        policy: protocol.Policy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or protocol.Policy()
        self.timeout = timeout or httpx.Timeout(60.0, connect=10.0)
        self._api_key = api_key
        self._headers = {"X-Client-Name": client_name, "X-Client-Version": VERSION, "Accept": "application/json"}

    @staticmethod
    def settings_kwargs(settings: Settings) -> dict[str, Any]:
        submit = settings.submit
        return {
            "api_key": settings.api_key,
            "base_url": settings.base_url,
            "client_name": submit.client_name,
            "timeout": httpx.Timeout(submit.read_timeout_seconds, connect=submit.connect_timeout_seconds),
            "policy": protocol.Policy(retries=submit.retries, backoff_seconds=submit.backoff_seconds),
        }

    @property
    def api_key_missing(self) -> bool:
        return self._api_key is None

    def _request(self, call: protocol.Call) -> httpx.Request:
        if self._api_key is None:
            raise NotConfigured(KEY_HELP)
        headers = {**self._headers, "Authorization": f"Bearer {self._api_key.reveal()}"}
        return httpx.Request(
            call.method, self.base_url + call.path, params=call.params, json=call.json, headers=headers
        )

    def _scrub(self, error: SubmitterError) -> SubmitterError:
        """The same error with the API key cut out of its message, should a server ever echo it."""
        key = self._api_key.reveal() if self._api_key else ""
        if key and key in str(error):
            error.args = tuple(str(arg).replace(key, "[redacted]") for arg in error.args)
            if isinstance(error, ProviderError):
                error.message = error.message.replace(key, "[redacted]")
        return error

    @staticmethod
    def _check_put(filename: str, response: httpx.Response) -> None:
        if not 200 <= response.status_code < 300:
            raise ProviderError(f"upload of {filename}: HTTP {response.status_code}", status=response.status_code)

    @staticmethod
    def _ticket(data: Any, filename: str) -> tuple[str, dict[str, str], str]:
        upload = data.get("upload") if isinstance(data, dict) else None
        download_url = data.get("download_url") if isinstance(data, dict) else None
        if not isinstance(upload, dict) or not upload.get("url") or str(upload.get("method", "PUT")).upper() != "PUT":
            raise ProviderError(f"upload ticket for {filename}: no PUT url in the provider's answer")
        if not isinstance(download_url, str) or not download_url:
            raise ProviderError(f"upload ticket for {filename}: no download_url in the provider's answer")
        headers = {str(k): str(v) for k, v in (upload.get("headers") or {}).items()}
        return str(upload["url"]), headers, download_url


class AsyncProviderClient(_Base):
    """The async client: one pooled ``httpx.AsyncClient``; ``transport=`` is how tests inject the network."""

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._sleep = sleep
        self._http = httpx.AsyncClient(transport=transport, timeout=self.timeout)
        # Requests sent again, by reason (protocol.Decision.reason): what a batch run reports.
        self.retried: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Self:
        return cls(**{**cls.settings_kwargs(settings), **kwargs})

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def call(self, call: protocol.Call) -> Any:
        request = self._request(call)
        for attempt in range(self.policy.retries + 1):
            try:
                decision = protocol.on_response(call, await self._http.send(request), attempt, self.policy)
            except httpx.HTTPError as exc:
                decision = protocol.on_exception(call, exc, attempt, self.policy, self.base_url)
            if decision.delay is None:
                break
            self.retried[decision.reason or "other"] += 1
            await self._sleep(decision.delay)
        if decision.error is not None:
            raise self._scrub(decision.error)
        return decision.value

    async def submit(self, model_id: str, inputs: dict[str, Any], webhook_url: str | None) -> dict[str, Any]:
        return _prediction(await self.call(protocol.submit_call(model_id, inputs, webhook_url)), model_id)

    async def result(self, prediction_id: str) -> dict[str, Any]:
        return _prediction(await self.call(protocol.result_call(prediction_id)), prediction_id)

    async def list_page(self, page: int, page_size: int = 100, **filters: str) -> list[dict[str, Any]]:
        return protocol.list_items(await self.call(protocol.list_call(page, page_size, filters)))

    async def webhook_secret(self) -> Secret:
        return _secret(await self.call(protocol.secret_call()))

    async def upload(self, filename: str, content: bytes, content_type: str) -> str:
        """Ask for an upload ticket, PUT the bytes where it says, and return the URL to pass as an input."""
        data = await self.call(protocol.upload_ticket_call(filename, len(content), content_type))
        url, headers, download_url = self._ticket(data, filename)
        try:
            response = await self._http.put(url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderError(f"upload of {filename}: {type(exc).__name__}") from exc
        self._check_put(filename, response)
        return download_url


def _prediction(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise ProviderError(f"{what}: the provider's answer carries no prediction id")
    return data


def _secret(data: Any) -> Secret:
    secret = data.get("secret") if isinstance(data, dict) else data
    if not isinstance(secret, str) or not secret:
        raise ProviderError("webhook secret: the provider's answer carries no secret")
    return Secret(secret)


__all__ = ["AsyncProviderClient"]
