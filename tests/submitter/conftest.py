"""Fixtures of the submitter's unit tests: a fake provider behind MockTransport, settings aimed at it,
and ``AsyncSubmitter``s on a fresh ledger that record their sleeps instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from receiver.settings import Secret, Settings, SubmitSettings
from submitter.service import AsyncSubmitter
from tests.submitter.fake_provider import BASE, KEY, FakeProvider

PUBLIC_URL = "https://hooks.example.com/base?tenant=a&x=1"
HANDLERS = ("notify",)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def submit_settings(settings_factory: Callable[..., Settings]) -> Callable[..., Settings]:
    """Settings aimed at the fake provider; ``submit=`` fields may be overridden by keyword."""

    def make(**submit: Any) -> Settings:
        base = {"retries": 2, "backoff_seconds": 0.001, "unknown_grace_seconds": 60.0, **submit}
        return settings_factory(
            api_key=Secret(KEY), base_url=BASE, public_url=PUBLIC_URL, submit=SubmitSettings(**base)
        )

    return make


@pytest.fixture
def open_submitter(
    submit_settings: Callable[..., Settings], provider: FakeProvider
) -> Callable[..., contextlib.AbstractAsyncContextManager[AsyncSubmitter]]:
    """``async with open_submitter(**submit_overrides) as sub``: an AsyncSubmitter on the fake provider;
    every terminal outcome routes to the one handler ``notify``; ``sub.slept`` lists the sleeps asked for."""

    @contextlib.asynccontextmanager
    async def make(
        settings: Settings | None = None, *, real_sleep: bool = False, **submit: Any
    ) -> AsyncIterator[AsyncSubmitter]:
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            if real_sleep:
                await asyncio.sleep(seconds)

        sub = await AsyncSubmitter.open(
            settings or submit_settings(**submit),
            transport=provider.transport(),
            route=lambda _model, _status: HANDLERS,
            sleep=sleep,
        )
        sub.slept = slept  # type: ignore[attr-defined]
        try:
            yield sub
        finally:
            await sub.aclose()

    return make
