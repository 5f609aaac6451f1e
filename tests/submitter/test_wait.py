"""Waiting: on the ledger while the webhook may come, on the provider only after the fallback deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from submitter.errors import WaitTimeout
from submitter.service import AsyncSubmitter
from tests.submitter.fake_provider import FakeProvider

# Runs on every ledger backend (SQLite, PostgreSQL): see ``settings_factory``.
pytestmark = pytest.mark.usefixtures("backend")

T2V = "bytedance/seedance-v1-lite-t2v-480p"
Opener = Callable[..., contextlib.AbstractAsyncContextManager[AsyncSubmitter]]


def results_asked(provider: FakeProvider) -> int:
    return len([r for r in provider.requests if r.url.path.endswith("/result")])


@pytest.mark.anyio
async def test_webhook_ends_the_wait_without_asking_the_provider(
    open_submitter: Opener, provider: FakeProvider
) -> None:
    """The row turning final in the ledger ends the wait; the provider is never polled meanwhile."""
    async with open_submitter(real_sleep=True) as sub:
        result = await sub.submit(T2V, {"prompt": "a fox"})
        assert result.prediction_id is not None
        waiting = asyncio.create_task(sub.wait(result.prediction_id, deadline=10, fallback_after=60))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await sub.ingestor.ingest_result(provider.finish("task0001"), reference=result.reference, source="webhook")
        row = await asyncio.wait_for(waiting, 5)
    assert row["status"] == "completed"
    assert [e["source"] for e in row["events"]] == ["webhook"]
    assert results_asked(provider) == 0


@pytest.mark.anyio
async def test_fallback_asks_provider_and_ingests(open_submitter: Opener, provider: FakeProvider) -> None:
    """Past the fallback deadline the provider is asked, and its final answer is ingested like a webhook."""
    async with open_submitter(real_sleep=True) as sub:
        result = await sub.submit(T2V, {"prompt": "a fox"})
        provider.finish("task0001", "failed")
        row = await sub.wait("task0001", deadline=10, fallback_after=0.2)
    assert row["status"] == "failed"
    assert [(e["source"], e["webhook_id"]) for e in row["events"]] == [("reconcile", "reconcile:task0001:failed")]
    assert row["reference"] == result.reference
    assert [r["handler"] for r in row["handler_runs"]] == ["notify"]
    assert results_asked(provider) == 1


@pytest.mark.anyio
async def test_wait_gives_up_at_the_deadline(open_submitter: Opener, provider: FakeProvider) -> None:
    """A prediction still running at the deadline raises WaitTimeout naming it and its status."""
    async with open_submitter(real_sleep=True) as sub:
        await sub.submit(T2V, {"prompt": "a fox"})
        with pytest.raises(WaitTimeout, match=r"task0001 is not final after 0\.3 s"):
            await sub.wait("task0001", deadline=0.3, fallback_after=0.1)
